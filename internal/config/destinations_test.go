package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadDestinations(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(secretFile, []byte("approle-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `
destinations:
  - name: web
    type: files
    dir: /etc/ssl/certkeeper
    owner: root
    group: ssl-cert
    mode: "0640"
    keyMode: 0600
    pfx: true
    pfxPassword: pfx-pass
    reloadCommand: systemctl reload nginx
    reloadTimeout: 30s
  - name: prod-kv
    type: azureKeyVault
    vaultUrl: https://prod-kv.vault.azure.net
    credential: clientSecret
    tenantId: tenant
    clientId: client
    clientSecret: azure-secret
  - name: bao
    type: vault
    address: https://bao.example.com:8200
    mount: kv
    path: certkeeper
    auth: approle
    roleId: role
    secretIdFile: ` + secretFile + `
defaultDestinations: [web, bao]
delivery:
  retryMin: 1s
`
	got, err := load([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Destination{
		{Name: "web", Type: "files", Files: &FilesDestination{Dir: "/etc/ssl/certkeeper", Owner: "root", Group: "ssl-cert",
			Mode: 0o640, KeyMode: 0o600, PFX: true, PFXPassword: "pfx-pass", ReloadCommand: "systemctl reload nginx",
			ReloadTimeout: 30 * time.Second}},
		{Name: "prod-kv", Type: "azureKeyVault", AzureKeyVault: &AzureKeyVaultBlock{VaultURL: "https://prod-kv.vault.azure.net",
			Credential: "clientSecret", TenantID: "tenant", ClientID: "client", ClientSecret: "azure-secret"}},
		{Name: "bao", Type: "vault", Vault: &VaultDestination{Address: "https://bao.example.com:8200", Mount: "kv",
			Path: "certkeeper", Auth: "approle", RoleID: "role", SecretID: "approle-secret", SecretIDFile: secretFile}},
	}
	if diff := cmp.Diff(want, got.Destinations); diff != "" {
		t.Errorf("destinations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web", "bao"}, got.DefaultDestinations); diff != "" {
		t.Errorf("defaultDestinations (-want +got):\n%s", diff)
	}
	if got.Delivery.RetryMin != time.Second || got.Delivery.MaxAttempts != 20 {
		t.Errorf("delivery = %+v", got.Delivery)
	}
}

func TestDestinationProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown key of the type", "destinations:\n  - {name: a, type: files, dir: /x, vaultUrl: https://v}\n",
			[]string{"field vaultUrl not valid in a destination of type files"}},
		{"unknown type", "destinations:\n  - {name: a, type: s3}\n", []string{`destination type "s3" is not supported`}},
		{"bad mode", "destinations:\n  - {name: a, type: files, dir: /x, mode: rw-r--r--}\n", []string{`"rw-r--r--" is not an octal file mode`}},
		{"every problem", `destinations:
  - {name: a, type: files, dir: relative, pfx: true}
  - {name: a, type: vault, address: ftp://x, auth: ldap}
  - {name: "b c", type: azureKeyVault, vaultUrl: http://v, credential: clientSecret}
defaultDestinations: [nope]
delivery: {retryMin: 0s, maxAttempts: 0}
`, []string{
			`destinations[0].dir: "relative" must be an absolute path`,
			"destinations[0].pfxPassword: required when pfx is true",
			`destinations[1].name: "a" is already the name of destinations[0]`,
			`destinations[1].address: "ftp://x" is not an absolute http or https URL`,
			`destinations[1].auth: "ldap" is not supported`,
			`destinations[2].name: "b c" must be letters`,
			`destinations[2].vaultUrl: "http://v" is not an https URL`,
			"destinations[2].tenantId: required with clientSecret",
			"destinations[2].clientSecret: required with clientSecret",
			`defaultDestinations[0]: "nope" is not a configured destination`,
			"delivery.retryMin: must be positive",
			"delivery.maxAttempts: must be at least 1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load([]byte(tt.doc), nil)
			if err == nil {
				t.Fatal("load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
