package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// TestLoadProviderTypes decodes one block of every type (two of one type
// side by side), with secrets inline and in files.
func TestLoadProviderTypes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	yaml := `
dns:
  providers:
    - {name: CF one, type: cloudflare, apiToken: cf-token-1}
    - {name: CF two, type: cloudflare, apiTokenFile: ` + file("cf2", "cf-token-2") + `, zones: [two.example]}
    - {name: CF legacy, type: cloudflare, email: me@example.com, apiKey: global-key, zones: [legacy.example]}
    - {name: R53, type: route53, accessKeyId: AKID, secretAccessKeyFile: ` + file("aws", "aws-secret") + `, roleArn: "arn:aws:iam::123:role/dns", zones: [aws.example]}
    - {name: R53 chain, type: route53, zones: [chain.example]}
    - {name: Azure, type: azureDns, subscriptionId: sub, tenantId: t, clientId: c, clientSecretFile: ` + file("az", "az-secret") + `, zones: [az.example]}
    - {name: Azure private, type: azurePrivateDns, subscriptionId: sub, resourceGroup: rg, zones: [corp.internal]}
    - {name: Google, type: googleCloudDns, project: p, serviceAccountKeyFile: ` + file("gcp", `{"type":"service_account"}`) + `, zones: [gcp.example]}
    - {name: GoDaddy, type: goDaddy, apiKey: k, apiSecret: s, ttl: 600, zones: [gd.example]}
    - {name: PDNS, type: powerdns, apiUrl: "http://127.0.0.1:8081", apiKey: pk, zones: [pdns.example]}
    - {name: DO, type: digitalocean, apiToken: dop, zones: [do.example]}
    - {name: Hetzner, type: hetzner, apiToken: ht, zones: [hz.example]}
    - {name: TransIP, type: transip, login: me, privateKeyFile: ` + file("tip", "-----BEGIN PRIVATE KEY-----") + `}
    - {name: Namecheap, type: namecheap, apiUser: u, apiKey: nk, clientIp: 192.0.2.7, sandbox: true}
    - {name: Akamai, type: akamai, host: akab-x.luna.akamaiapis.net, clientToken: akab-ct, clientSecret: cs, accessTokenFile: ` + file("aka", "akab-at") + `}
`
	c, err := load([]byte(yaml), nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	got := map[string]ProviderSettings{}
	for _, p := range c.DNS.Providers {
		got[p.Name] = p.Block()
	}
	want := map[string]ProviderSettings{
		"CF one":        &Cloudflare{APIToken: "cf-token-1"},
		"CF two":        &Cloudflare{APIToken: "cf-token-2", APITokenFile: filepath.Join(dir, "cf2")},
		"CF legacy":     &Cloudflare{Email: "me@example.com", APIKey: "global-key"},
		"R53":           &Route53{AccessKeyID: "AKID", SecretAccessKey: "aws-secret", SecretAccessKeyFile: filepath.Join(dir, "aws"), RoleARN: "arn:aws:iam::123:role/dns"},
		"R53 chain":     &Route53{},
		"Azure":         &AzureDNS{SubscriptionID: "sub", TenantID: "t", ClientID: "c", ClientSecret: "az-secret", ClientSecretFile: filepath.Join(dir, "az")},
		"Azure private": &AzureDNS{SubscriptionID: "sub", ResourceGroup: "rg"},
		"Google":        &GoogleCloudDNS{Project: "p", ServiceAccountKey: `{"type":"service_account"}`, ServiceAccountKeyFile: filepath.Join(dir, "gcp")},
		"GoDaddy":       &GoDaddy{APIKey: "k", APISecret: "s"},
		"PDNS":          &PowerDNS{APIURL: "http://127.0.0.1:8081", APIKey: "pk", ServerID: "localhost"},
		"DO":            &DigitalOcean{APIToken: "dop"},
		"Hetzner":       &Hetzner{APIToken: "ht"},
		"TransIP":       &TransIP{Login: "me", PrivateKey: "-----BEGIN PRIVATE KEY-----", PrivateKeyFile: filepath.Join(dir, "tip")},
		"Namecheap":     &Namecheap{APIUser: "u", APIKey: "nk", ClientIP: "192.0.2.7", Sandbox: true},
		"Akamai":        &Akamai{Host: "akab-x.luna.akamaiapis.net", ClientToken: "akab-ct", ClientSecret: "cs", AccessToken: "akab-at", AccessTokenFile: filepath.Join(dir, "aka")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
}

func TestValidateProviderBlocks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		block ProviderSettings
		typ   string
		want  []string
	}{
		{"cloudflare nothing", &Cloudflare{}, ProviderCloudflare, []string{"dns.providers[0].apiToken: required (or email and apiKey)"}},
		{"cloudflare both", &Cloudflare{APIToken: "t", Email: "e"}, ProviderCloudflare, []string{"dns.providers[0]: set either apiToken or email and apiKey, not both"}},
		{"cloudflare key without email", &Cloudflare{APIKey: "k"}, ProviderCloudflare, []string{"dns.providers[0].email: required"}},
		{"cloudflare endpoint", &Cloudflare{APIToken: "t", Endpoint: "ftp://x"}, ProviderCloudflare, []string{`dns.providers[0].endpoint: "ftp://x" is not an absolute http or https URL`}},
		{"route53 half keys", &Route53{AccessKeyID: "a"}, ProviderRoute53, []string{"dns.providers[0]: accessKeyId and secretAccessKey go together"}},
		{"route53 role", &Route53{RoleARN: "role"}, ProviderRoute53, []string{`dns.providers[0].roleArn: "role" is not an ARN`}},
		{"azure", &AzureDNS{ClientSecret: "s", Cloud: "Mars"}, ProviderAzureDNS, []string{
			"dns.providers[0].subscriptionId: required", "dns.providers[0].tenantId: required", "dns.providers[0].clientId: required",
			`dns.providers[0].cloud: "Mars" is not a cloud, use one of: AzurePublicCloud, AzureChinaCloud, AzureUSGovernment`}},
		{"google", &GoogleCloudDNS{}, ProviderGoogleCloudDNS, []string{"dns.providers[0].project: required"}},
		{"godaddy", &GoDaddy{}, ProviderGoDaddy, []string{"dns.providers[0].apiKey: required", "dns.providers[0].apiSecret: required"}},
		{"powerdns", &PowerDNS{APIURL: "x"}, ProviderPowerDNS, []string{`dns.providers[0].apiUrl: "x" is not an absolute http or https URL`, "dns.providers[0].apiKey: required", "dns.providers[0].serverId: required"}},
		{"digitalocean", &DigitalOcean{}, ProviderDigitalOcean, []string{"dns.providers[0].apiToken: required"}},
		{"hetzner", &Hetzner{}, ProviderHetzner, []string{"dns.providers[0].apiToken: required"}},
		{"transip", &TransIP{}, ProviderTransIP, []string{"dns.providers[0].login: required", "dns.providers[0].privateKey: required"}},
		{"namecheap", &Namecheap{ClientIP: "2001:db8::1"}, ProviderNamecheap, []string{"dns.providers[0].apiUser: required", "dns.providers[0].apiKey: required", `dns.providers[0].clientIp: "2001:db8::1" is not an IPv4 address`}},
		{"akamai", &Akamai{}, ProviderAkamai, []string{"dns.providers[0].host: required", "dns.providers[0].clientToken: required", "dns.providers[0].clientSecret: required", "dns.providers[0].accessToken: required"}},
		{"block of another type", &Hetzner{APIToken: "t"}, ProviderDigitalOcean, []string{"dns.providers[0]: the settings are not those of type digitalocean"}},
		{"missing block", nil, ProviderGoDaddy, []string{"dns.providers[0]: the goDaddy settings are missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.DNS.Providers = []DNSProvider{{Name: "p", Type: tt.typ, TTL: 60, Zones: []string{"example.com"}, Settings: tt.block}}
			var got []string
			for _, e := range c.problems() {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProviderSecretsHidden checks that no secret of any block reaches a
// problem text, and that every secret field has a …File key.
func TestProviderSecretsHidden(t *testing.T) {
	t.Parallel()
	for _, typ := range ProviderTypes {
		block := providerTypes[typ]()
		secretFields(block, func(key string, value *secret.String, file *string) {
			if file == nil {
				t.Errorf("%s.%s has no %sFile key", typ, key, key)
			}
			*value = "super-secret-value"
		})
		c := Default()
		c.DNS.Providers = []DNSProvider{{Name: "p", Type: typ, TTL: 60}}
		c.DNS.Providers[0].setBlock(block)
		for _, e := range c.problems() {
			if strings.Contains(e.Error(), "super-secret-value") {
				t.Errorf("%s: problem %q holds a secret", typ, e)
			}
		}
	}
}
