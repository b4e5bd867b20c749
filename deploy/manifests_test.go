package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// objects are the Kubernetes objects of one deployment, decoded into the
// API types.
type objects struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	serviceAccounts []*corev1.ServiceAccount
	claims          []*corev1.PersistentVolumeClaim
	budgets         []*policyv1.PodDisruptionBudget
	monitors        []*monitoringv1.ServiceMonitor
}

// splitDocuments splits a YAML stream on its "---" lines and drops the
// documents that hold nothing but comments and blank lines.
func splitDocuments(stream []byte) [][]byte {
	var out [][]byte
	for doc := range bytes.SplitSeq(stream, []byte("\n---")) {
		doc = bytes.TrimPrefix(doc, []byte("---"))
		empty := true
		for line := range bytes.SplitSeq(doc, []byte("\n")) {
			if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
				empty = false
				break
			}
		}
		if !empty {
			out = append(out, doc)
		}
	}
	return out
}

// add decodes one manifest into its API type, refusing unknown fields and
// kinds this deployment does not use.
func (o *objects) add(t *testing.T, source string, doc []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: not YAML: %v\n%s", source, err, doc)
	}
	var target any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		v := &appsv1.Deployment{}
		o.deployments, target = append(o.deployments, v), v
	case "v1 Service":
		v := &corev1.Service{}
		o.services, target = append(o.services, v), v
	case "v1 ConfigMap":
		v := &corev1.ConfigMap{}
		o.configMaps, target = append(o.configMaps, v), v
	case "v1 Secret":
		v := &corev1.Secret{}
		o.secrets, target = append(o.secrets, v), v
	case "v1 ServiceAccount":
		v := &corev1.ServiceAccount{}
		o.serviceAccounts, target = append(o.serviceAccounts, v), v
	case "v1 PersistentVolumeClaim":
		v := &corev1.PersistentVolumeClaim{}
		o.claims, target = append(o.claims, v), v
	case "policy/v1 PodDisruptionBudget":
		v := &policyv1.PodDisruptionBudget{}
		o.budgets, target = append(o.budgets, v), v
	case "monitoring.coreos.com/v1 ServiceMonitor":
		v := &monitoringv1.ServiceMonitor{}
		o.monitors, target = append(o.monitors, v), v
	default:
		t.Fatalf("%s: unexpected object %q %q", source, tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, target); err != nil {
		t.Fatalf("%s: %s does not match the Kubernetes API: %v", source, tm.Kind, err)
	}
}

// expectations are what a deployment is checked against besides the rules
// every deployment follows.
type expectations struct {
	replicas int32
	postgres bool
	// secretName is the Secret the pods read; secret is its contents when
	// the deployment includes it (else a Secret made by the operator).
	secretName string
	monitor    bool
	persistent bool
	// secretValues replaces the Secret's contents for loading the
	// configuration (the shipped manifests hold placeholders).
	secretValues map[string]string
}

// check applies the rules of a working certkeeper deployment to o.
func check(t *testing.T, o *objects, want expectations) {
	t.Helper()
	if len(o.deployments) != 1 || len(o.services) != 1 || len(o.configMaps) != 1 {
		t.Fatalf("%d Deployments, %d Services, %d ConfigMaps; want one of each",
			len(o.deployments), len(o.services), len(o.configMaps))
	}
	d, svc, cm := o.deployments[0], o.services[0], o.configMaps[0]
	pod := d.Spec.Template

	// The Deployment.
	if d.Spec.Replicas == nil || *d.Spec.Replicas != want.replicas {
		t.Errorf("replicas = %v, want %d", d.Spec.Replicas, want.replicas)
	}
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || selector.Empty() || !selector.Matches(labels.Set(pod.Labels)) {
		t.Errorf("the Deployment's selector %v does not select its pods %v (%v)", d.Spec.Selector, pod.Labels, err)
	}
	wantStrategy := appsv1.RollingUpdateDeploymentStrategyType
	if !want.postgres {
		wantStrategy = appsv1.RecreateDeploymentStrategyType
	}
	if d.Spec.Strategy.Type != wantStrategy {
		t.Errorf("strategy = %s, want %s", d.Spec.Strategy.Type, wantStrategy)
	}
	if want.postgres && (d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil ||
		d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0) {
		t.Errorf("a rolling update must keep every replica: %+v", d.Spec.Strategy.RollingUpdate)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/certkeeper/certkeeper.yaml"}) {
		t.Errorf("args = %q", c.Args)
	}

	// Not root, nothing writable but the volumes, no privileges.
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v; want non-root with the runtime's seccomp profile", psc)
	}
	csc := c.SecurityContext
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext = %+v; want a read-only root, no escalation, every capability dropped", csc)
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("the pods mount a service account token they do not need")
	}
	if len(o.serviceAccounts) == 1 && pod.Spec.ServiceAccountName != o.serviceAccounts[0].Name {
		t.Errorf("serviceAccountName %q, but the service account is %q", pod.Spec.ServiceAccountName, o.serviceAccounts[0].Name)
	}

	// Probes on the API's own port.
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Fatalf("ports = %+v, want http 8080", c.Ports)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe = %+v, want GET %s on port http", p.name, p.probe, p.path)
		}
	}

	// Volumes: each mount has its volume, each volume its object.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("mount %s has no volume", m.Name)
		}
		mounts[m.MountPath] = m.Name
		switch {
		case v.ConfigMap != nil && v.ConfigMap.Name != cm.Name:
			t.Errorf("volume %s uses ConfigMap %s, want %s", v.Name, v.ConfigMap.Name, cm.Name)
		case v.Secret != nil && v.Secret.SecretName != want.secretName:
			t.Errorf("volume %s uses Secret %s, want %s", v.Name, v.Secret.SecretName, want.secretName)
		case v.PersistentVolumeClaim != nil && (len(o.claims) != 1 || o.claims[0].Name != v.PersistentVolumeClaim.ClaimName):
			t.Errorf("volume %s uses claim %s, which is not rendered", v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	if dataVolume := volumes[mounts["/var/lib/certkeeper"]]; want.persistent != (dataVolume.PersistentVolumeClaim != nil) {
		t.Errorf("data volume %+v; persistent wanted: %t", dataVolume, want.persistent)
	}
	for _, path := range []string{"/etc/certkeeper/certkeeper.yaml", "/etc/certkeeper/secrets", "/var/lib/certkeeper", "/tmp"} {
		if mounts[path] == "" {
			t.Errorf("nothing mounted at %s", path)
		}
	}

	// The Secret: every key the pods read is there.
	var secret *corev1.Secret
	for _, s := range o.secrets {
		if s.Name == want.secretName {
			secret = s
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != want.secretName {
				t.Errorf("env %s reads Secret %s, want %s", e.Name, ref.Name, want.secretName)
			}
			if secret != nil {
				if _, ok := secret.StringData[ref.Key]; !ok {
					t.Errorf("env %s reads key %s, which Secret %s lacks", e.Name, ref.Key, secret.Name)
				}
			}
			env[e.Name] = want.secretValues[ref.Key]
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		}
	}
	if _, ok := env["CERTKEEPER_MASTER_KEY"]; !ok {
		t.Error("no CERTKEEPER_MASTER_KEY from the Secret")
	}
	if _, ok := env["CERTKEEPER_DATABASE"]; ok != want.postgres {
		t.Errorf("CERTKEEPER_DATABASE set: %t, PostgreSQL wanted: %t", ok, want.postgres)
	}

	// certkeeper accepts the configuration.
	cfg := loadConfig(t, cm.Data["certkeeper.yaml"], env, want.secretValues)
	if cfg.Listen != "0.0.0.0:8080" || cfg.DataDir != "/var/lib/certkeeper" {
		t.Errorf("listen %s, dataDir %s; want 0.0.0.0:8080 and the data volume", cfg.Listen, cfg.DataDir)
	}
	shutdownGrace := 20 * time.Second // certkeeper's default
	if cfg.Jobs.ShutdownGrace != "" {
		if shutdownGrace, err = time.ParseDuration(cfg.Jobs.ShutdownGrace); err != nil {
			t.Fatalf("jobs.shutdownGrace: %v", err)
		}
	}
	if grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second; grace < shutdownGrace+30*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v leaves too little after jobs.shutdownGrace %v", grace, shutdownGrace)
	}

	// The Service reaches the pods on the API port.
	svcSelector := labels.SelectorFromSet(svc.Spec.Selector)
	if len(svc.Spec.Selector) == 0 || !svcSelector.Matches(labels.Set(pod.Labels)) {
		t.Errorf("the Service's selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports = %+v, want http to the pods' http", svc.Spec.Ports)
	}

	// Voluntary disruptions keep a replica.
	if want.replicas > 1 {
		if len(o.budgets) != 1 {
			t.Fatalf("%d PodDisruptionBudgets, want 1", len(o.budgets))
		}
		pdb := o.budgets[0]
		s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || s.Empty() || !s.Matches(labels.Set(pod.Labels)) {
			t.Errorf("the PodDisruptionBudget's selector %v does not select the pods", pdb.Spec.Selector)
		}
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(want.replicas) {
			t.Errorf("minAvailable = %v, want at least 1 and fewer than the %d replicas", pdb.Spec.MinAvailable, want.replicas)
		}
	} else if len(o.budgets) != 0 {
		t.Error("a PodDisruptionBudget for one replica blocks every node drain")
	}

	// Prometheus finds the Service.
	if len(o.monitors) != map[bool]int{true: 1, false: 0}[want.monitor] {
		t.Fatalf("%d ServiceMonitors, want monitor=%t", len(o.monitors), want.monitor)
	}
	for _, m := range o.monitors {
		s, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
		if err != nil || s.Empty() || !s.Matches(labels.Set(svc.Labels)) {
			t.Errorf("the ServiceMonitor's selector %v does not select the Service %v", m.Spec.Selector, svc.Labels)
		}
		if len(m.Spec.Endpoints) != 1 || m.Spec.Endpoints[0].Port != "http" || m.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoints = %+v, want /metrics on port http", m.Spec.Endpoints)
		}
	}
}

// fileConfig is what these tests read of certkeeper.yaml themselves;
// certkeeper validates the whole of it.
type fileConfig struct {
	Listen  string `json:"listen"`
	DataDir string `json:"dataDir"`
	Jobs    struct {
		ShutdownGrace string `json:"shutdownGrace"`
	} `json:"jobs"`
}

// loadConfig has certkeeper check certkeeper.yaml as the container would
// load it: with the Secret's keys as files (their mount moved to a
// temporary directory) and the container's environment.
func loadConfig(t *testing.T, doc string, env, secretFiles map[string]string) fileConfig {
	t.Helper()
	dir := t.TempDir()
	secretsDir := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secretsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range secretFiles {
		if err := os.WriteFile(filepath.Join(secretsDir, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "certkeeper.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(doc, "/etc/certkeeper/secrets/", secretsDir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(certkeeperBin, "check", "--config", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("certkeeper refuses the configuration: %v\n%s\n%s", err, out, doc)
	}
	var cfg fileConfig
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// secretValues are valid stand-ins for the shipped placeholders.
func secretValues() map[string]string {
	return map[string]string{
		"master-key":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"database-url": "postgres://certkeeper:pw@postgres:5432/certkeeper?sslmode=verify-full",
		"tsig-secret":  "c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cw==",
		"api-key-ci":   "a-long-random-api-key-0123456789",
	}
}

// TestKubernetesManifests decodes every file of deploy/kubernetes strictly
// into the Kubernetes API types and checks the deployment they make.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kust struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	raw, err := os.ReadFile(filepath.Join("kubernetes", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &kust); err != nil || kust.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: %v (kind %q)", err, kust.Kind)
	}
	o := &objects{}
	var listed []string
	for _, f := range files {
		name := filepath.Base(f)
		if name == "kustomization.yaml" {
			continue
		}
		listed = append(listed, name)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := splitDocuments(data)
		if len(docs) != 1 {
			t.Errorf("%s holds %d objects, want 1", f, len(docs))
		}
		for _, doc := range docs {
			o.add(t, f, doc)
		}
	}
	slices.Sort(listed)
	resources := slices.Sorted(slices.Values(kust.Resources))
	if !slices.Equal(listed, resources) {
		t.Errorf("kustomization.yaml lists %v, the directory holds %v", resources, listed)
	}
	if len(o.secrets) != 1 {
		t.Fatalf("%d Secrets, want 1", len(o.secrets))
	}
	for k, v := range o.secrets[0].StringData {
		if !strings.Contains(v, "REPLACE") {
			t.Errorf("secret.yaml ships a value for %s that does not look like a placeholder", k)
		}
		if _, ok := secretValues()[k]; !ok {
			t.Errorf("secret.yaml key %s has no stand-in in this test", k)
		}
	}
	check(t, o, expectations{replicas: 2, postgres: true, secretName: "certkeeper", monitor: true, secretValues: secretValues()})
}

var valuesKey = regexp.MustCompile(`^(\s*)([A-Za-z0-9_.-]+):`)

// TestValuesDocumented checks that every key of the chart's values.yaml has
// a comment on the line above it.
func TestValuesDocumented(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("helm", "certkeeper", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	keys := 0
	for i, line := range lines {
		m := valuesKey.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		keys++
		prev := ""
		if i > 0 {
			prev = strings.TrimSpace(lines[i-1])
		}
		if !strings.HasPrefix(prev, "#") {
			t.Errorf("values.yaml:%d: %s has no comment above it", i+1, strings.TrimSpace(line))
		}
	}
	if keys < 40 {
		t.Errorf("found %d keys in values.yaml; the pattern is broken", keys)
	}
}

func TestSplitDocuments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		want   []string
	}{
		{"one", "a: 1\n", []string{"a: 1"}},
		{"comments and empties dropped", "# only a comment\n---\na: 1\n---\n\n---\nb: 2\n", []string{"a: 1", "b: 2"}},
		{"leading separator", "---\na: 1\n", []string{"a: 1"}},
		{"nothing", "# nothing\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, d := range splitDocuments([]byte(tt.stream)) {
				got = append(got, strings.TrimSpace(string(d)))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("splitDocuments = %q, want %q", got, tt.want)
			}
		})
	}
}
