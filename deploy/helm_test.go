package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/engine"
)

var chartDir = filepath.Join("helm", "certkeeper")

// render does what helm template does: the chart's values coalesced with
// vals and checked against values.schema.json, every template rendered by
// Helm's engine, partials and NOTES.txt left out. It returns the manifests
// by template name.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	top, err := chartutil.ToRenderValuesWithSchemaValidation(chrt, vals,
		common.ReleaseOptions{Name: "certkeeper", Namespace: "certs", IsInstall: true, Revision: 1}, nil, false)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(chrt, top)
	if err != nil {
		return nil, err
	}
	manifests := map[string]string{}
	for name, content := range out {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" || strings.TrimSpace(content) == "" {
			continue
		}
		manifests[name] = content
	}
	return manifests, nil
}

// values builds chart values from dotted paths, as helm --set does.
func values(sets map[string]any) map[string]any {
	out := map[string]any{}
	for path, v := range sets {
		m := out
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

// providerConfig is a DNS provider and an API key whose secrets are files
// of the chart's Secret.
var providerConfig = map[string]any{
	"config.acme.contacts": []any{"admin@example.com"},
	"config.dns.providers": []any{map[string]any{
		"name": "BIND", "type": "rfc2136", "zones": []any{"example.com"}, "nameserver": "ns1.example.com:53",
		"tsigKeyName": "certkeeper", "tsigAlgorithm": "hmac-sha256", "tsigSecretFile": "/etc/certkeeper/secrets/tsig-secret",
	}},
	"config.auth.apiKeys": []any{map[string]any{
		"name": "ci", "keyFile": "/etc/certkeeper/secrets/api-key-ci", "roles": []any{"Acmebot.IssueCertificate"},
	}},
}

func with(base map[string]any, sets map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range sets {
		out[k] = v
	}
	return out
}

// TestHelmChart renders the chart with the value sets people use and checks
// every manifest as TestKubernetesManifests does; values that cannot work
// are refused with a message that says why.
func TestHelmChart(t *testing.T) {
	t.Parallel()
	sv := secretValues()
	ownSecret := map[string]any{
		"secrets.values": map[string]any{
			"master-key": sv["master-key"], "database-url": sv["database-url"],
			"tsig-secret": sv["tsig-secret"], "api-key-ci": sv["api-key-ci"],
		},
	}
	tests := []struct {
		name      string
		sets      map[string]any
		want      expectations
		templates []string
		wantErr   string
	}{
		{
			name: "defaults with PostgreSQL",
			sets: with(providerConfig, ownSecret),
			want: expectations{replicas: 2, postgres: true, secretName: "certkeeper", secretValues: sv},
			templates: []string{"configmap.yaml", "deployment.yaml", "pdb.yaml", "secret.yaml", "service.yaml",
				"serviceaccount.yaml"},
		},
		{
			name: "existing secret, three replicas, ServiceMonitor",
			sets: with(providerConfig, map[string]any{
				"secrets.existingSecret": "certkeeper-prod", "replicaCount": 3, "serviceMonitor.enabled": true,
				"serviceMonitor.labels": map[string]any{"release": "prometheus"},
			}),
			want: expectations{replicas: 3, postgres: true, secretName: "certkeeper-prod", monitor: true, secretValues: sv},
			templates: []string{"configmap.yaml", "deployment.yaml", "pdb.yaml", "service.yaml", "serviceaccount.yaml",
				"servicemonitor.yaml"},
		},
		{
			name: "one replica on SQLite with a volume",
			sets: with(providerConfig, map[string]any{
				"replicaCount": 1, "persistence.enabled": true,
				"secrets.values": map[string]any{"master-key": sv["master-key"], "database-url": "",
					"tsig-secret": sv["tsig-secret"], "api-key-ci": sv["api-key-ci"]},
			}),
			want:      expectations{replicas: 1, secretName: "certkeeper", persistent: true, secretValues: sv},
			templates: []string{"configmap.yaml", "deployment.yaml", "pvc.yaml", "secret.yaml", "service.yaml", "serviceaccount.yaml"},
		},
		{
			name:    "several replicas without PostgreSQL",
			sets:    values(map[string]any{"secrets.values.master-key": sv["master-key"]}),
			wantErr: "replicaCount above 1 needs PostgreSQL",
		},
		{
			name:    "no master key",
			sets:    values(map[string]any{"secrets.values.database-url": sv["database-url"]}),
			wantErr: "the master key is required",
		},
		{
			name:    "unknown value",
			sets:    with(ownSecret, map[string]any{"replicas": 3}),
			wantErr: "replicas",
		},
		{
			name:    "config sets what the chart owns",
			sets:    with(ownSecret, map[string]any{"config": map[string]any{"listen": "127.0.0.1:1"}}),
			wantErr: "config",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			manifests, err := render(t, values(tt.sets))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("render error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			var names []string
			o := &objects{}
			for name, content := range manifests {
				names = append(names, filepath.Base(name))
				for _, doc := range splitDocuments([]byte(content)) {
					o.add(t, name, doc)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.templates) {
				t.Errorf("rendered %v, want %v", names, tt.templates)
			}
			for _, s := range o.secrets {
				for k, v := range s.StringData {
					if v == "" {
						t.Errorf("Secret key %s is empty", k)
					}
				}
			}
			check(t, o, tt.want)
			if d := o.deployments[0]; d.Namespace != "certs" || d.Labels["app.kubernetes.io/managed-by"] != "Helm" {
				t.Errorf("namespace %q, labels %v", d.Namespace, d.Labels)
			}
		})
	}
}

// TestHelmLint runs helm lint's rules on the chart with working values.
func TestHelmLint(t *testing.T) {
	t.Parallel()
	sv := secretValues()
	vals := values(with(providerConfig, map[string]any{
		"secrets.values": map[string]any{"master-key": sv["master-key"], "database-url": sv["database-url"]},
	}))
	linter := lint.RunAll(chartDir, vals, "certs")
	for _, m := range linter.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		} else {
			t.Logf("helm lint: %s", m)
		}
	}
}
