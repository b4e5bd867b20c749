package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testHMACKey is a realistic EAB MAC key (base64url, 32 bytes).
const testHMACKey = "c2VjcmV0LWVhYi1obWFjLWtleS1mb3ItdGVzdGluZyE"

func TestValidateCAs(t *testing.T) {
	t.Parallel()
	caBundle := writeCABundle(t)
	missing := filepath.Join(t.TempDir(), "none.pem")
	eab := func() *EAB { return &EAB{KeyID: "kid-1", HMACKey: testHMACKey} }
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // exact problem texts; nil means valid
	}{
		{"short name as acme endpoint", func(c *Config) { c.ACME.Endpoint = "letsencrypt-staging" }, nil},
		{"unknown short name", func(c *Config) { c.ACME.Endpoint = "letsencrypt-prod" },
			[]string{`acme.endpoint: "letsencrypt-prod" is neither an https URL nor a known CA (letsencrypt, letsencrypt-staging, zerossl, googletrust, googletrust-staging, sslcomrsa, sslcomecc, buypass, buypass-staging, actalis)`}},
		{"acme endpoint needing EAB", func(c *Config) { c.ACME.Endpoint = "zerossl" },
			[]string{"acme.externalAccountBinding: required: ZeroSSL requires an External Account Binding (keyId and hmacKey from the CA's account page)"}},
		{"acme endpoint URL needing EAB", func(c *Config) { c.ACME.Endpoint = "https://dv.acme-v02.api.pki.goog/directory" },
			[]string{"acme.externalAccountBinding: required: Google Trust Services requires an External Account Binding (keyId and hmacKey from the CA's account page)"}},
		{"acme with EAB", func(c *Config) { c.ACME.Endpoint = "zerossl"; c.ACME.ExternalAccountBinding = eab() }, nil},
		{"only cas", func(c *Config) {
			c.ACME.Endpoint = ""
			c.CAs = []CA{{Name: "letsencrypt"}}
		}, nil},
		{"neither acme nor cas", func(c *Config) { c.ACME.Endpoint = "" }, []string{"acme.endpoint: required (or configure cas)"}},
		{"full list", func(c *Config) {
			c.CAs = []CA{
				{Name: "staging", Endpoint: "letsencrypt-staging", Contacts: []string{"a@example.com"}, Profile: "shortlived"},
				{Name: "zerossl", ExternalAccountBinding: &EAB{KeyID: "k", HMACKey: testHMACKey, Algorithm: "hs512"}},
				{Name: "private", Endpoint: "https://ca.internal.example/acme/directory", CABundle: caBundle},
				{Name: "test", Endpoint: "http://127.0.0.1:14000/dir"},
			}
			c.DefaultCAs = []string{"default", "zerossl"}
		}, nil},
		{"name problems", func(c *Config) {
			c.CAs = []CA{{Endpoint: "https://a.example/dir"}, {Name: "default", Endpoint: "https://b.example/dir"},
				{Name: "x y", Endpoint: "https://c.example/dir"}, {Name: "ca", Endpoint: "https://d.example/dir"},
				{Name: "ca", Endpoint: "https://e.example/dir"}}
		}, []string{
			"cas[0].name: required",
			`cas[1].name: "default" is the name of the CA acme.endpoint configures`,
			`cas[2].name: "x y" must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
			`cas[4].name: "ca" is already the name of cas[3]`,
		}},
		{"endpoint problems", func(c *Config) {
			c.CAs = []CA{{Name: "mine"}, {Name: "plain", Endpoint: "http://ca.example/dir"}, {Name: "le", Endpoint: "letsencrypt"}}
		}, []string{
			"cas[0].endpoint: required (or name the CA by a short name: letsencrypt, letsencrypt-staging, zerossl, googletrust, googletrust-staging, sslcomrsa, sslcomecc, buypass, buypass-staging, actalis)",
			`cas[1].endpoint: "http://ca.example/dir" must use https (http only for 127.0.0.1 or localhost)`,
			"cas[2].endpoint: https://acme-v02.api.letsencrypt.org/directory is also the directory of acme.endpoint; one ACME account per directory: give that CA the settings instead",
		}},
		{"EAB problems", func(c *Config) {
			c.CAs = []CA{
				{Name: "zerossl"},
				{Name: "gts", Endpoint: "googletrust", ExternalAccountBinding: &EAB{HMACKey: "not base64!", Algorithm: "RS256"}},
				{Name: "actalis", ExternalAccountBinding: &EAB{KeyID: "k", HMACKey: "c2hvcnQ"}},
				{Name: "sslcom", Endpoint: "sslcomecc", ExternalAccountBinding: &EAB{KeyID: "k"}},
			}
		}, []string{
			"cas[0].externalAccountBinding: required: ZeroSSL requires an External Account Binding (keyId and hmacKey from the CA's account page)",
			"cas[1].externalAccountBinding.keyId: required",
			"cas[1].externalAccountBinding.hmacKey: must be base64url (as the CA shows it)",
			`cas[1].externalAccountBinding.algorithm: "RS256" is not supported, use one of: HS256, HS384, HS512`,
			"cas[2].externalAccountBinding.hmacKey: must be at least 16 bytes; it is 5",
			"cas[3].externalAccountBinding.hmacKey: required",
		}},
		{"contacts and bundle", func(c *Config) {
			c.CAs = []CA{{Name: "buypass", Contacts: []string{"nobody"}, CABundle: missing}}
		}, []string{
			`cas[0].contacts[0]: "nobody" is not an e-mail address`,
			"cas[0].caBundle: reading CA bundle: open " + missing + ": no such file or directory",
		}},
		{"defaultCAs problems", func(c *Config) {
			c.CAs = []CA{{Name: "buypass"}}
			c.DefaultCAs = []string{"buypass", "zerossl", "buypass"}
		}, []string{
			`defaultCAs[1]: "zerossl" is not a configured CA (default, buypass)`,
			`defaultCAs[2]: "buypass" is listed twice`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(&c)
			got := problemTexts(c.Validate())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
			}
			if strings.Contains(strings.Join(got, "\n"), testHMACKey) {
				t.Errorf("a problem contains the HMAC key: %v", got)
			}
		})
	}
}

func TestAllCAsAndDefaultOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mutate    func(c *Config)
		wantCAs   []CA
		wantOrder []string
	}{
		{
			name:      "acme only",
			mutate:    func(c *Config) { c.ACME.Endpoint = "buypass"; c.ACME.Profile = "p" },
			wantCAs:   []CA{{Name: "default", Endpoint: "https://api.buypass.com/acme/directory", Profile: "p"}},
			wantOrder: []string{"default"},
		},
		{
			name: "acme and cas without defaultCAs",
			mutate: func(c *Config) {
				c.CAs = []CA{{Name: "zerossl", ExternalAccountBinding: &EAB{KeyID: "k", HMACKey: testHMACKey}}, {Name: "b", Endpoint: "buypass"}}
			},
			wantCAs: []CA{
				{Name: "default", Endpoint: DefaultACMEEndpoint},
				{Name: "zerossl", Endpoint: "https://acme.zerossl.com/v2/DV90", ExternalAccountBinding: &EAB{KeyID: "k", HMACKey: testHMACKey, Algorithm: "HS256"}},
				{Name: "b", Endpoint: "https://api.buypass.com/acme/directory"},
			},
			wantOrder: []string{"zerossl", "b"},
		},
		{
			name: "defaultCAs",
			mutate: func(c *Config) {
				c.ACME.Endpoint = ""
				c.CAs = []CA{{Name: "one", Endpoint: "https://one.example/dir"}, {Name: "two", Endpoint: "https://two.example/dir"}}
				c.DefaultCAs = []string{"two", "one"}
			},
			wantCAs:   []CA{{Name: "one", Endpoint: "https://one.example/dir"}, {Name: "two", Endpoint: "https://two.example/dir"}},
			wantOrder: []string{"two", "one"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.mutate(&c)
			if diff := cmp.Diff(tt.wantCAs, c.AllCAs()); diff != "" {
				t.Errorf("AllCAs() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOrder, c.DefaultCAOrder()); diff != "" {
				t.Errorf("DefaultCAOrder() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadCAs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hmacFile := filepath.Join(dir, "hmac")
	if err := os.WriteFile(hmacFile, []byte(testHMACKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `
acme:
  endpoint: letsencrypt
cas:
  - name: zerossl
    externalAccountBinding: {keyId: "kid-1", hmacKeyFile: ` + hmacFile + `, algorithm: HS384}
  - name: staging
    endpoint: letsencrypt-staging
    profile: shortlived
defaultCAs: [default, zerossl]
`
	got, err := load([]byte(doc), nil)
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	if got.ACME.Endpoint != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Errorf("acme.endpoint = %q, want the short name resolved", got.ACME.Endpoint)
	}
	want := []CA{
		{Name: "default", Endpoint: "https://acme-v02.api.letsencrypt.org/directory"},
		{Name: "zerossl", Endpoint: "https://acme.zerossl.com/v2/DV90",
			ExternalAccountBinding: &EAB{KeyID: "kid-1", HMACKey: testHMACKey, HMACKeyFile: hmacFile, Algorithm: "HS384"}},
		{Name: "staging", Endpoint: "https://acme-staging-v02.api.letsencrypt.org/directory", Profile: "shortlived"},
	}
	if diff := cmp.Diff(want, got.AllCAs()); diff != "" {
		t.Errorf("AllCAs() mismatch (-want +got):\n%s", diff)
	}

	t.Run("both forms and unknown keys", func(t *testing.T) {
		t.Parallel()
		_, err := load([]byte(`
cas:
  - name: zerossl
    externalAccountBinding: {keyId: k, hmacKey: `+testHMACKey+`, hmacKeyFile: `+hmacFile+`}
`), nil)
		want := []string{"cas[0].externalAccountBinding.hmacKeyFile: must not be set together with hmacKey"}
		if diff := cmp.Diff(want, problemTexts(err)); diff != "" {
			t.Errorf("load() problems mismatch (-want +got):\n%s", diff)
		}
		if strings.Contains(err.Error(), testHMACKey) {
			t.Errorf("error %q holds the HMAC key", err)
		}
		_, err = load([]byte("cas:\n  - name: x\n    directory: https://x.example/dir\n"), nil)
		if err == nil || !strings.Contains(err.Error(), "line 3: field directory not found") {
			t.Errorf("load() with an unknown key = %v, want it named with its line", err)
		}
	})
}

func TestDecodeHMACKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "aGVsbG8-d29ybGQ_", want: "hello>world?"},
		{in: "aGVsbG8-d29ybGQ_\n", want: "hello>world?"},
		{in: "aGk", want: "hi"},
		{in: "aGk=", want: "hi"},
		{in: "aGVsbG8+d29ybGQ/", want: "hello>world?"},
		{in: "not base64!", wantErr: true},
	}
	for _, tt := range tests {
		got, err := DecodeHMACKey(tt.in)
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("DecodeHMACKey(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
