package config

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/auth"
)

// envMap returns an env function reading m.
func envMap(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

func TestLoadExample(t *testing.T) {
	t.Parallel()
	got, err := Load("testdata/example.yaml", nil)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	want := &Config{
		Listen:        "127.0.0.1:8080",
		DataDir:       "./data",
		MasterKeyFile: filepath.Join("data", "master.key"),
		ACME: ACME{
			Endpoint: "https://acme-v02.api.letsencrypt.org/directory",
			Contacts: []string{"admin@example.com"},
		},
		DNS: DNS{
			Resolvers:          []string{},
			PropagationTimeout: 5 * time.Minute,
			FollowCNAMEs:       true,
			Providers: []DNSProvider{
				{
					Name: "BIND", Type: "rfc2136", Zones: []string{"example.test"}, TTL: 60, PropagationTimeout: 5 * time.Minute,
					RFC2136: &RFC2136{
						Nameserver:    "127.0.0.1:8054",
						TSIGKeyName:   "acme-key",
						TSIGAlgorithm: "hmac-sha256",
						TSIGSecret:    testTSIGSecret,
					},
				},
				{
					Name: "Custom DNS", Type: "customDns", TTL: 60, PropagationTimeout: 5 * time.Minute,
					CustomDNS: &CustomDNS{
						Endpoint:         "https://dns-api.example.com/",
						APIKey:           testCustomAPIKey,
						APIKeyHeaderName: "X-Api-Key",
					},
				},
			},
		},
		Auth: Auth{
			APIKeys:   []APIKey{{Name: "ci", Key: testAPIKey, Roles: []string{"Acmebot.IssueCertificate", "Acmebot.RevokeCertificate"}}},
			RateLimit: DefaultRateLimit,
		},
		Jobs: Jobs{Workers: 20, Timeout: 15 * time.Minute, RescueAfter: time.Minute, ShutdownGrace: 20 * time.Second},
		Log:  Log{Level: "info", Format: "text"},
		Delivery: Delivery{Timeout: 2 * time.Minute, RetryMin: 30 * time.Second, RetryMax: time.Hour,
			MaxAttempts: 20},
		// issue 5
		Renewal:      defaultRenewal(),
		Housekeeping: Housekeeping{Interval: time.Hour, OperationRetention: 720 * time.Hour, JobRetention: 24 * time.Hour},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load() mismatch (-want +got):\n%s", diff)
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	want := Config{
		Listen:        "127.0.0.1:8080",
		DataDir:       "./data",
		MasterKeyFile: filepath.Join("data", "master.key"),
		ACME:          ACME{Endpoint: "https://acme-v02.api.letsencrypt.org/directory"},
		DNS:           DNS{PropagationTimeout: 5 * time.Minute, FollowCNAMEs: true},
		Auth:          Auth{RateLimit: RateLimit{PerMinute: 30, Burst: 30}},
		Jobs:          Jobs{Workers: 20, Timeout: 15 * time.Minute, RescueAfter: time.Minute, ShutdownGrace: 20 * time.Second},
		Housekeeping:  Housekeeping{Interval: time.Hour, OperationRetention: 720 * time.Hour, JobRetention: 24 * time.Hour},
		Log:           Log{Level: "info", Format: "text"},
		Delivery: Delivery{Timeout: 2 * time.Minute, RetryMin: 30 * time.Second, RetryMax: time.Hour,
			MaxAttempts: 20},
		Renewal: defaultRenewal(), // issue 5
	}
	if diff := cmp.Diff(want, Default()); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	got, err := Load("", nil)
	if err != nil {
		t.Fatalf(`Load("") error = %v`, err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf(`Load("") mismatch (-want +got):\n%s`, diff)
	}
}

func TestLoadDerivedDefaults(t *testing.T) {
	t.Parallel()
	const doc = `
dataDir: /var/lib/certkeeper
dns:
  propagationTimeout: 2m
  providers:
    - name: a
      type: rfc2136
      nameserver: 127.0.0.1:53
      tsigKeyName: k
      tsigSecret: c2VjcmV0
    - name: b
      type: customDns
      propagationTimeout: 30s
      ttl: 120
      endpoint: https://dns.example.com/api
      apiKey: key
jobs:
  timeout: 30m
`
	got, err := load([]byte(doc), nil)
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	want := Default()
	want.DataDir = "/var/lib/certkeeper"
	want.MasterKeyFile = "/var/lib/certkeeper/master.key"
	want.DNS.PropagationTimeout = 2 * time.Minute
	want.DNS.Providers = []DNSProvider{
		{
			Name: "a", Type: "rfc2136", TTL: 60, PropagationTimeout: 2 * time.Minute,
			RFC2136: &RFC2136{Nameserver: "127.0.0.1:53", TSIGKeyName: "k", TSIGAlgorithm: "hmac-sha256", TSIGSecret: "c2VjcmV0"},
		},
		{
			Name: "b", Type: "customDns", TTL: 120, PropagationTimeout: 30 * time.Second,
			CustomDNS: &CustomDNS{Endpoint: "https://dns.example.com/api/", APIKey: "key", APIKeyHeaderName: "X-Api-Key"},
		},
	}
	want.Jobs = Jobs{Workers: 20, Timeout: 30 * time.Minute, RescueAfter: time.Minute, ShutdownGrace: 20 * time.Second}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("load() mismatch (-want +got):\n%s", diff)
	}
	if got.SQLitePath() != "/var/lib/certkeeper/certkeeper.db" || got.IsPostgres() {
		t.Errorf("SQLitePath() = %q, IsPostgres() = %t; want the file in dataDir and false", got.SQLitePath(), got.IsPostgres())
	}
}

func TestLoadEnv(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "config.yaml", `
listen: 127.0.0.1:9000
dataDir: /from/file
database: postgres://file/db
acme:
  endpoint: https://file.example.com/dir
masterKeyFile: /from/file/master.key
log:
  level: warn
  format: json
`)
	tests := []struct {
		name   string
		env    map[string]string
		mutate func(c *Config) // applied to the file's config to get the expected one
	}{
		{"no env", nil, func(*Config) {}},
		{"empty values are unset", map[string]string{EnvListen: "", EnvDataDir: "", EnvLogLevel: ""}, func(*Config) {}},
		{EnvListen, map[string]string{EnvListen: "0.0.0.0:8443"}, func(c *Config) { c.Listen = "0.0.0.0:8443" }},
		{EnvDataDir, map[string]string{EnvDataDir: "/from/env"}, func(c *Config) { c.DataDir = "/from/env" }},
		{EnvDatabase, map[string]string{EnvDatabase: "postgresql://env/db"}, func(c *Config) { c.Database = "postgresql://env/db" }},
		{EnvACMEEndpoint, map[string]string{EnvACMEEndpoint: "http://127.0.0.1:14000/dir"}, func(c *Config) { c.ACME.Endpoint = "http://127.0.0.1:14000/dir" }},
		{EnvMasterKey, map[string]string{EnvMasterKey: testMasterKey}, func(c *Config) { c.MasterKey = testMasterKey }},
		{EnvMasterKeyFile, map[string]string{EnvMasterKeyFile: "/run/secrets/mk"}, func(c *Config) { c.MasterKeyFile = "/run/secrets/mk" }},
		{EnvLogLevel, map[string]string{EnvLogLevel: "debug"}, func(c *Config) { c.Log.Level = "debug" }},
		{EnvLogFormat, map[string]string{EnvLogFormat: "text"}, func(c *Config) { c.Log.Format = "text" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := Default()
			want.Listen = "127.0.0.1:9000"
			want.DataDir = "/from/file"
			want.Database = "postgres://file/db"
			want.ACME.Endpoint = "https://file.example.com/dir"
			want.MasterKeyFile = "/from/file/master.key"
			want.Log = Log{Level: "warn", Format: "json"}
			tt.mutate(&want)
			got, err := Load(file, envMap(tt.env))
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("Load() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadEnvWithoutFile(t *testing.T) {
	t.Parallel()
	got, err := Load("", envMap(map[string]string{EnvDataDir: "/srv/ck", EnvDatabase: "postgres://db/ck"}))
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	// The master key file follows the data directory set in the environment.
	if got.MasterKeyFile != "/srv/ck/master.key" {
		t.Errorf("MasterKeyFile = %q, want /srv/ck/master.key", got.MasterKeyFile)
	}
	if !got.IsPostgres() || got.SQLitePath() != "" {
		t.Errorf("IsPostgres() = %t, SQLitePath() = %q; want true and empty", got.IsPostgres(), got.SQLitePath())
	}
	// Invalid environment values are reported like file values.
	_, err = Load("", envMap(map[string]string{EnvLogLevel: "loud", EnvMasterKey: "short"}))
	want := []string{
		"masterKey: must be the base64 encoding of 32 bytes",
		`log.level: "loud" is not a level, use one of: debug, info, warn, error`,
	}
	if diff := cmp.Diff(want, problemTexts(err)); diff != "" {
		t.Errorf("Load() problems mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error
	}{
		{"unknown top-level key", "listen: 127.0.0.1:8080\nlisten_addr: x\n", []string{"line 2: field listen_addr not found"}},
		{"unknown nested key", "acme:\n  endpoint: https://ca.example/dir\n  email: a@example.com\n", []string{"line 3: field email not found"}},
		{"unknown api key field", "auth:\n  apiKeys:\n    - name: ci\n      secret: x\n", []string{"line 4: field secret not found"}},
		{"unknown key in rfc2136 provider", `
dns:
  providers:
    - name: BIND
      type: rfc2136
      nameserver: 127.0.0.1:53
      tsigSecrett: c2VjcmV0
`, []string{"line 7: field tsigSecrett not valid in a dns provider of type rfc2136"}},
		{"customDns key in rfc2136 provider", `
dns:
  providers:
    - name: BIND
      type: rfc2136
      endpoint: https://x.example/
`, []string{"line 6: field endpoint not valid in a dns provider of type rfc2136"}},
		{"rfc2136 key in customDns provider", `
dns:
  providers:
    - type: customDns
      name: C
      tsigKeyName: k
`, []string{"line 6: field tsigKeyName not valid in a dns provider of type customDns"}},
		{"unknown provider type", `
dns:
  providers:
    - name: CF
      type: nosuchdns
`, []string{`line 5: dns provider type "nosuchdns" is not supported, use one of: ` + typeList}},
		{"missing provider type", `
dns:
  providers:
    - name: CF
      zones: [example.com]
`, []string{"line 4: dns provider: type is required, one of: " + typeList}},
		{"provider not a mapping", "dns:\n  providers:\n    - rfc2136\n", []string{"line 3: a dns provider must be a mapping"}},
		{"every unknown key at once", `
bogus: 1
dns:
  providers:
    - name: a
      type: rfc2136
      extra1: x
      extra2: y
jobs:
  threads: 3
`, []string{"line 2: field bogus", "line 7: field extra1", "line 8: field extra2", "line 10: field threads"}},
		{"wrong type", "jobs:\n  workers: many\n", []string{"line 2: cannot unmarshal"}},
		{"duration as number", "jobs:\n  timeout: 900\n", []string{"line 2: cannot unmarshal"}},
		{"bad duration", "dns:\n  propagationTimeout: 5 minutes\n", []string{"line 2: cannot unmarshal"}},
		{"provider ttl wrong type", "dns:\n  providers:\n    - name: a\n      type: customDns\n      ttl: long\n", []string{"line 5: cannot unmarshal"}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", []string{`line 2: mapping key "listen" already defined at line 1`}},
		{"duplicate key in provider", "dns:\n  providers:\n    - name: a\n      type: customDns\n      name: b\n", []string{`mapping key "name" already defined`}},
		{"two documents", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", []string{"more than one document"}},
		{"syntax error", "listen: [\n", []string{"yaml:"}},
		{"not a mapping", "- a\n- b\n", []string{"cannot unmarshal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := writeFile(t, "config.yaml", tt.doc)
			c, err := Load(file, nil)
			if err == nil {
				t.Fatalf("Load() = %+v, want an error", c)
			}
			if c != nil {
				t.Errorf("Load() returned a config with error %v", err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Load() error %q does not contain %q", err, s)
				}
			}
			if !strings.Contains(err.Error(), file) {
				t.Errorf("Load() error %q does not name the file", err)
			}
		})
	}
}

func TestLoadEmptyDocument(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		got, err := load([]byte(doc), nil)
		if err != nil {
			t.Fatalf("load(%q) error = %v", doc, err)
		}
		want := Default()
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("load(%q) mismatch (-want +got):\n%s", doc, diff)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(missing, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load() error = %v, want os.ErrNotExist", err)
	}
}

func TestLoadSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tsigFile := write("tsig", testTSIGSecret+"\n")
	customFile := write("custom", testCustomAPIKey+"\r\n")
	keyFile := write("key", testAPIKey)
	missing := filepath.Join(dir, "missing")

	doc := func(tsig, custom, key string) string {
		return `
dns:
  providers:
    - name: BIND
      type: rfc2136
      nameserver: 127.0.0.1:53
      tsigKeyName: acme-key
` + tsig + `
    - name: Custom
      type: customDns
      endpoint: https://dns.example.com/
` + custom + `
auth:
  apiKeys:
    - name: ci
` + key + "\n"
	}

	t.Run("read", func(t *testing.T) {
		t.Parallel()
		got, err := load([]byte(doc(
			"      tsigSecretFile: "+tsigFile,
			"      apiKeyFile: "+customFile,
			"      keyFile: "+keyFile,
		)), nil)
		if err != nil {
			t.Fatalf("load() error = %v", err)
		}
		p0, p1, k := got.DNS.Providers[0].RFC2136, got.DNS.Providers[1].CustomDNS, got.Auth.APIKeys[0]
		gotSecrets := []string{p0.TSIGSecret.Reveal(), p1.APIKey.Reveal(), k.Key.Reveal()}
		if diff := cmp.Diff([]string{testTSIGSecret, testCustomAPIKey, testAPIKey}, gotSecrets); diff != "" {
			t.Errorf("secrets mismatch (-want +got):\n%s", diff)
		}
		gotFiles := []string{p0.TSIGSecretFile, p1.APIKeyFile, k.KeyFile}
		if diff := cmp.Diff([]string{tsigFile, customFile, keyFile}, gotFiles); diff != "" {
			t.Errorf("file keys mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("both forms", func(t *testing.T) {
		t.Parallel()
		_, err := load([]byte(doc(
			"      tsigSecret: "+testTSIGSecret+"\n      tsigSecretFile: "+tsigFile,
			"      apiKey: "+testCustomAPIKey+"\n      apiKeyFile: "+customFile,
			"      key: "+testAPIKey+"\n      keyFile: "+keyFile,
		)), nil)
		want := []string{
			"dns.providers[0].tsigSecretFile: must not be set together with tsigSecret",
			"dns.providers[1].apiKeyFile: must not be set together with apiKey",
			"auth.apiKeys[0].keyFile: must not be set together with key",
		}
		if diff := cmp.Diff(want, problemTexts(err)); diff != "" {
			t.Errorf("load() problems mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("unreadable", func(t *testing.T) {
		t.Parallel()
		_, err := load([]byte(doc(
			"      tsigSecretFile: "+missing,
			"      apiKey: "+testCustomAPIKey,
			"      keyFile: "+dir,
		)), nil)
		want := []string{
			"dns.providers[0].tsigSecretFile: reading secret file: open " + missing + ": no such file or directory",
			"auth.apiKeys[0].keyFile: reading secret file: read " + dir + ": is a directory",
			// The secret stays empty, so it is also reported missing.
			"dns.providers[0].tsigSecret: required",
			"auth.apiKeys[0].key: required",
		}
		if diff := cmp.Diff(want, problemTexts(err)); diff != "" {
			t.Errorf("load() problems mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("errors hide file contents", func(t *testing.T) {
		t.Parallel()
		// A TSIG secret that is not base64 and an API key that is too short,
		// both read from files, are reported without their values.
		badTSIG := write("bad-tsig", "not base64 s3cr3t!\n")
		shortKey := write("short-key", "s3cr3t-short\n")
		_, err := load([]byte(doc(
			"      tsigSecretFile: "+badTSIG,
			"      apiKeyFile: "+customFile,
			"      keyFile: "+shortKey,
		)), nil)
		want := []string{
			"dns.providers[0].tsigSecret: must be base64",
			"auth.apiKeys[0].key: must be at least 16 characters",
		}
		if diff := cmp.Diff(want, problemTexts(err)); diff != "" {
			t.Errorf("load() problems mismatch (-want +got):\n%s", diff)
		}
		for _, s := range []string{"s3cr3t", testCustomAPIKey} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("load() error %q contains secret %q", err, s)
			}
		}
	})
}

func TestLoadEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	const doc = `
listen: localhost
acme:
  contacts: [not-an-address]
dns:
  providers:
    - name: BIND
      type: rfc2136
      nameserver: 127.0.0.1:53
      tsigKeyName: acme-key
      tsigAlgorithm: hmac-md5
      tsigSecret: c2VjcmV0
auth:
  apiKeys:
    - name: ci
      key: short
jobs:
  workers: -1
`
	_, err := load([]byte(doc), nil)
	want := []string{
		`listen: "localhost" is not host:port`,
		`acme.contacts[0]: "not-an-address" is not an e-mail address`,
		`dns.providers[0].tsigAlgorithm: "hmac-md5" is not supported, use one of: hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`,
		"auth.apiKeys[0].key: must be at least 16 characters",
		"jobs.workers: must be positive",
	}
	if diff := cmp.Diff(want, problemTexts(err)); diff != "" {
		t.Errorf("load() problems mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadScalarSecrets(t *testing.T) {
	t.Parallel()
	// Secrets that YAML would resolve as numbers or booleans are kept as
	// written.
	const doc = `
auth:
  apiKeys:
    - name: numeric
      key: 12345678901234567890
    - name: hex
      key: 0x1234567890abcdef
`
	got, err := load([]byte(doc), nil)
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	gotKeys := []string{got.Auth.APIKeys[0].Key.Reveal(), got.Auth.APIKeys[1].Key.Reveal()}
	if diff := cmp.Diff([]string{"12345678901234567890", "0x1234567890abcdef"}, gotKeys); diff != "" {
		t.Errorf("keys mismatch (-want +got):\n%s", diff)
	}
}

func TestAuthKeys(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/example.yaml", nil)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	c.Auth.RequireRoles = true
	keys := c.Auth.Keys()
	tests := []struct {
		name    string
		key     string
		want    auth.Principal
		wantErr error
	}{
		{"configured key", testAPIKey, auth.Principal{Name: "ci", Roles: []auth.Role{auth.RoleIssue, auth.RoleRevoke}, RequireRoles: true}, nil},
		{"other key", testCustomAPIKey, auth.Principal{}, auth.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/api/certificates", nil)
			r.Header.Set("X-Functions-Key", tt.key)
			got, err := keys.Authenticate(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Authenticate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
