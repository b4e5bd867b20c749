package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Realistic secret values used by the tests. None of them may appear in an
// error text.
const (
	testTSIGSecret   = "c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0aW5nLW9ubHk="
	testCustomAPIKey = "custom-dns-api-key-for-testing"
	testAPIKey       = "ck_ci-api-key-for-testing-only"
	testMasterKey    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// validConfig returns a valid configuration that uses every section.
func validConfig() Config {
	c := Default()
	c.ACME.Contacts = []string{"admin@example.com", "mailto:ops@example.com"}
	c.DNS.Resolvers = []string{"127.0.0.1:53", "[::1]:53"}
	c.DNS.Providers = []DNSProvider{
		{
			Name: "BIND", Type: ProviderRFC2136, Zones: []string{"example.test"}, TTL: 60, PropagationTimeout: time.Minute,
			RFC2136: &RFC2136{Nameserver: "127.0.0.1:8054", TSIGKeyName: "acme-key", TSIGAlgorithm: "hmac-sha256", TSIGSecret: testTSIGSecret},
		},
		{
			Name: "Custom DNS", Type: ProviderCustomDNS, TTL: 300, PropagationTimeout: time.Minute,
			CustomDNS: &CustomDNS{Endpoint: "https://dns-api.example.com/", APIKey: testCustomAPIKey, APIKeyHeaderName: "X-Api-Key"},
		},
	}
	c.Auth.APIKeys = []APIKey{{Name: "ci", Key: testAPIKey, Roles: []string{"Acmebot.IssueCertificate", "Acmebot.RevokeCertificate"}}}
	return c
}

// problemTexts returns the text of each problem in err, joined or not.
func problemTexts(err error) []string {
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range joined.Unwrap() {
		out = append(out, problemTexts(e)...)
	}
	return out
}

// writeCABundle writes a PEM file with one self-signed certificate.
func writeCABundle(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateValid(t *testing.T) {
	t.Parallel()
	def := Default()
	if err := def.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Errorf("validConfig().Validate() = %v, want nil", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	caBundle := writeCABundle(t)
	notPEM := writeFile(t, "not.pem", "hello\n")
	keyPEM := writeFile(t, "key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	badCert := writeFile(t, "bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	rfc := func(c *Config) *RFC2136 { return c.DNS.Providers[0].RFC2136 }
	custom := func(c *Config) *CustomDNS { return c.DNS.Providers[1].CustomDNS }

	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // exact problem texts; nil means valid
	}{
		// listen
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, []string{`listen: "127.0.0.1" is not host:port`}},
		{"listen bad port", func(c *Config) { c.Listen = "127.0.0.1:http" }, []string{`listen: "127.0.0.1:http" has an invalid port`}},
		{"listen port too large", func(c *Config) { c.Listen = "127.0.0.1:65536" }, []string{`listen: "127.0.0.1:65536" has an invalid port`}},
		{"listen empty", func(c *Config) { c.Listen = "" }, []string{`listen: "" is not host:port`}},
		{"listen every interface", func(c *Config) { c.Listen = ":8080" }, nil},
		{"listen port 0", func(c *Config) { c.Listen = "127.0.0.1:0" }, nil},
		{"listen ipv6", func(c *Config) { c.Listen = "[::1]:8443" }, nil},
		// publicURL
		{"publicURL https", func(c *Config) { c.PublicURL = "https://certs.example.com/base" }, nil},
		{"publicURL http", func(c *Config) { c.PublicURL = "http://127.0.0.1:8080" }, nil},
		{"publicURL relative", func(c *Config) { c.PublicURL = "/api" }, []string{`publicURL: "/api" is not an absolute http or https URL`}},
		{"publicURL ftp", func(c *Config) { c.PublicURL = "ftp://example.com" }, []string{`publicURL: "ftp://example.com" is not an absolute http or https URL`}},
		// dataDir
		{"dataDir empty", func(c *Config) { c.DataDir = "" }, []string{"dataDir: required"}},
		// database
		{"database postgres", func(c *Config) { c.Database = "postgres://u:p@db:5432/certkeeper" }, nil},
		{"database postgresql", func(c *Config) { c.Database = "postgresql://db/certkeeper?sslmode=require" }, nil},
		{"database mysql", func(c *Config) { c.Database = "mysql://u:hunter2@db/x" }, []string{"database: must be empty (SQLite in dataDir) or a postgres:// or postgresql:// URL"}},
		{"database dsn", func(c *Config) { c.Database = "host=db password=hunter2" }, []string{"database: must be empty (SQLite in dataDir) or a postgres:// or postgresql:// URL"}},
		// masterKey
		{"masterKey valid", func(c *Config) { c.MasterKey = testMasterKey }, nil},
		{"masterKey short", func(c *Config) { c.MasterKey = "AAECAwQFBgcICQoLDA0ODw==" }, []string{"masterKey: must be the base64 encoding of 32 bytes"}},
		{"masterKey not base64", func(c *Config) { c.MasterKey = "not base64!" }, []string{"masterKey: must be the base64 encoding of 32 bytes"}},
		{"no master key at all", func(c *Config) { c.MasterKeyFile = "" }, []string{"masterKeyFile: required when masterKey is not set"}},
		{"masterKey without file", func(c *Config) { c.MasterKey = testMasterKey; c.MasterKeyFile = "" }, nil},
		// acme
		{"acme endpoint empty", func(c *Config) { c.ACME.Endpoint = "" }, []string{"acme.endpoint: required (or configure cas)"}},
		{"acme endpoint http remote", func(c *Config) { c.ACME.Endpoint = "http://ca.example.com/dir" },
			[]string{`acme.endpoint: "http://ca.example.com/dir" must use https (http only for 127.0.0.1 or localhost)`}},
		{"acme endpoint http loopback", func(c *Config) { c.ACME.Endpoint = "http://127.0.0.1:14000/dir" }, nil},
		{"acme endpoint http localhost", func(c *Config) { c.ACME.Endpoint = "http://localhost:14000/dir" }, nil},
		{"acme endpoint relative", func(c *Config) { c.ACME.Endpoint = "acme/dir" }, []string{`acme.endpoint: "acme/dir" is not an absolute https URL`}},
		{"acme endpoint ftp", func(c *Config) { c.ACME.Endpoint = "ftp://ca.example.com/" }, []string{`acme.endpoint: "ftp://ca.example.com/" is not an absolute https URL`}},
		{"acme contact display name", func(c *Config) { c.ACME.Contacts = []string{"ok@example.com", "Admin <a@example.com>"} },
			[]string{`acme.contacts[1]: "Admin <a@example.com>" is not an e-mail address`}},
		{"acme contact no domain", func(c *Config) { c.ACME.Contacts = []string{"admin"} }, []string{`acme.contacts[0]: "admin" is not an e-mail address`}},
		{"acme contact bad domain", func(c *Config) { c.ACME.Contacts = []string{"mailto:a@exa mple.com"} },
			[]string{`acme.contacts[0]: "mailto:a@exa mple.com" is not an e-mail address`}},
		{"acme caBundle valid", func(c *Config) { c.ACME.CABundle = caBundle }, nil},
		{"acme caBundle not PEM", func(c *Config) { c.ACME.CABundle = notPEM }, []string{"acme.caBundle: " + notPEM + " holds no PEM certificate"}},
		{"acme caBundle only a key", func(c *Config) { c.ACME.CABundle = keyPEM }, []string{"acme.caBundle: " + keyPEM + " holds no PEM certificate"}},
		{"acme caBundle bad certificate", func(c *Config) { c.ACME.CABundle = badCert },
			[]string{"acme.caBundle: parsing certificate 1 of " + badCert + ": x509: malformed certificate"}},
		{"acme caBundle missing", func(c *Config) { c.ACME.CABundle = missing },
			[]string{"acme.caBundle: reading CA bundle: open " + missing + ": no such file or directory"}},
		// dns
		{"dns resolver without port", func(c *Config) { c.DNS.Resolvers = []string{"127.0.0.1:53", "8.8.8.8"} }, []string{`dns.resolvers[1]: "8.8.8.8" is not host:port`}},
		{"dns resolver without host", func(c *Config) { c.DNS.Resolvers = []string{":53"} }, []string{`dns.resolvers[0]: ":53" has an invalid host`}},
		{"dns propagationTimeout zero", func(c *Config) { c.DNS.PropagationTimeout = 0 }, []string{"dns.propagationTimeout: must be positive"}},
		{"provider name empty", func(c *Config) { c.DNS.Providers[1].Name = "" }, []string{"dns.providers[1].name: required"}},
		{"provider name duplicate", func(c *Config) { c.DNS.Providers[1].Name = "BIND" }, []string{`dns.providers[1].name: "BIND" is already the name of dns.providers[0]`}},
		{"provider type empty", func(c *Config) { c.DNS.Providers[0].Type = ""; c.DNS.Providers[0].RFC2136 = nil },
			[]string{"dns.providers[0].type: required, one of: " + typeList}},
		{"provider type unknown", func(c *Config) { c.DNS.Providers[0].Type = "nosuchdns"; c.DNS.Providers[0].RFC2136 = nil },
			[]string{`dns.providers[0].type: "nosuchdns" is not supported, use one of: ` + typeList}},
		{"provider block missing", func(c *Config) { c.DNS.Providers[0].RFC2136 = nil }, []string{"dns.providers[0]: the rfc2136 settings are missing"}},
		{"provider customDns block missing", func(c *Config) { c.DNS.Providers[1].CustomDNS = nil }, []string{"dns.providers[1]: the customDns settings are missing"}},
		{"provider second block", func(c *Config) { c.DNS.Providers[0].CustomDNS = custom(c) }, []string{"dns.providers[0]: customDns settings are set on a provider of type rfc2136"}},
		{"provider zones", func(c *Config) {
			c.DNS.Providers[0].Zones = []string{"example.com.", "bad..zone", "-x.example", "_acme.example.com"}
		},
			[]string{`dns.providers[0].zones[1]: "bad..zone" is not a valid DNS name`, `dns.providers[0].zones[2]: "-x.example" is not a valid DNS name`}},
		{"provider zone too long", func(c *Config) { c.DNS.Providers[0].Zones = []string{strings.Repeat("a", 64) + ".example"} },
			[]string{`dns.providers[0].zones[0]: "` + strings.Repeat("a", 64) + `.example" is not a valid DNS name`}},
		{"provider ttl zero", func(c *Config) { c.DNS.Providers[0].TTL = 0 }, []string{"dns.providers[0].ttl: must be between 1 and 86400"}},
		{"provider ttl too large", func(c *Config) { c.DNS.Providers[1].TTL = 86401 }, []string{"dns.providers[1].ttl: must be between 1 and 86400"}},
		{"provider ttl max", func(c *Config) { c.DNS.Providers[1].TTL = 86400 }, nil},
		{"provider propagationTimeout negative", func(c *Config) { c.DNS.Providers[0].PropagationTimeout = -time.Second },
			[]string{"dns.providers[0].propagationTimeout: must not be negative"}},
		// rfc2136
		{"rfc2136 nameserver empty", func(c *Config) { rfc(c).Nameserver = "" }, []string{"dns.providers[0].nameserver: required"}},
		{"rfc2136 nameserver no port", func(c *Config) { rfc(c).Nameserver = "ns1.example.test" }, []string{`dns.providers[0].nameserver: "ns1.example.test" is not host:port`}},
		{"rfc2136 nameserver port 0", func(c *Config) { rfc(c).Nameserver = "127.0.0.1:0" }, []string{`dns.providers[0].nameserver: "127.0.0.1:0" has an invalid port`}},
		{"rfc2136 tsigKeyName empty", func(c *Config) { rfc(c).TSIGKeyName = "" }, []string{"dns.providers[0].tsigKeyName: required"}},
		{"rfc2136 tsigKeyName bad", func(c *Config) { rfc(c).TSIGKeyName = "acme key" }, []string{`dns.providers[0].tsigKeyName: "acme key" is not a valid DNS name`}},
		{"rfc2136 tsigSecret empty", func(c *Config) { rfc(c).TSIGSecret = "" }, []string{"dns.providers[0].tsigSecret: required"}},
		{"rfc2136 tsigSecret not base64", func(c *Config) { rfc(c).TSIGSecret = "not-base64-secret!" }, []string{"dns.providers[0].tsigSecret: must be base64"}},
		{"rfc2136 tsigSecret base64url", func(c *Config) { rfc(c).TSIGSecret = "c2VjcmV0-_8" }, []string{"dns.providers[0].tsigSecret: must be base64"}},
		{"rfc2136 algorithm unknown", func(c *Config) { rfc(c).TSIGAlgorithm = "hmac-md5" },
			[]string{`dns.providers[0].tsigAlgorithm: "hmac-md5" is not supported, use one of: hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`}},
		{"rfc2136 algorithm empty", func(c *Config) { rfc(c).TSIGAlgorithm = "" },
			[]string{`dns.providers[0].tsigAlgorithm: "" is not supported, use one of: hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`}},
		{"rfc2136 algorithm with dot", func(c *Config) { rfc(c).TSIGAlgorithm = "hmac-sha512." }, nil},
		{"rfc2136 algorithm sha1", func(c *Config) { rfc(c).TSIGAlgorithm = "hmac-sha1" }, nil},
		{"rfc2136 algorithm sha224", func(c *Config) { rfc(c).TSIGAlgorithm = "hmac-sha224." }, nil},
		{"rfc2136 algorithm sha384", func(c *Config) { rfc(c).TSIGAlgorithm = "hmac-sha384" }, nil},
		// customDns
		{"customDns endpoint empty", func(c *Config) { custom(c).Endpoint = "" }, []string{"dns.providers[1].endpoint: required"}},
		{"customDns endpoint relative", func(c *Config) { custom(c).Endpoint = "dns-api/" }, []string{`dns.providers[1].endpoint: "dns-api/" is not an absolute http or https URL`}},
		{"customDns endpoint no slash", func(c *Config) { custom(c).Endpoint = "https://dns-api.example.com/v1" },
			[]string{`dns.providers[1].endpoint: "https://dns-api.example.com/v1" must end in /`}},
		{"customDns endpoint http", func(c *Config) { custom(c).Endpoint = "http://127.0.0.1:9000/" }, nil},
		{"customDns apiKey empty", func(c *Config) { custom(c).APIKey = "" }, []string{"dns.providers[1].apiKey: required"}},
		{"customDns header empty", func(c *Config) { custom(c).APIKeyHeaderName = "" }, []string{"dns.providers[1].apiKeyHeaderName: required"}},
		{"customDns header bad", func(c *Config) { custom(c).APIKeyHeaderName = "X Api Key" },
			[]string{`dns.providers[1].apiKeyHeaderName: "X Api Key" is not a valid HTTP header name`}},
		// auth
		{"apiKey name empty", func(c *Config) { c.Auth.APIKeys[0].Name = "" }, []string{"auth.apiKeys[0].name: required"}},
		{"apiKey name duplicate", func(c *Config) {
			c.Auth.APIKeys = append(c.Auth.APIKeys, APIKey{Name: "ci", Key: "another-key-0123456789"})
		}, []string{`auth.apiKeys[1].name: "ci" is already the name of auth.apiKeys[0]`}},
		{"apiKey key duplicate", func(c *Config) {
			c.Auth.APIKeys = append(c.Auth.APIKeys, APIKey{Name: "other", Key: testAPIKey})
		}, []string{"auth.apiKeys[1].key: the same key as auth.apiKeys[0]"}},
		{"apiKey key empty", func(c *Config) { c.Auth.APIKeys[0].Key = "" }, []string{"auth.apiKeys[0].key: required"}},
		{"apiKey key short", func(c *Config) { c.Auth.APIKeys[0].Key = "fifteen-chars-x" }, []string{"auth.apiKeys[0].key: must be at least 16 characters"}},
		{"apiKey key 16", func(c *Config) { c.Auth.APIKeys[0].Key = "sixteen-chars-xx" }, nil},
		{"apiKey role unknown", func(c *Config) { c.Auth.APIKeys[0].Roles = []string{"Acmebot.IssueCertificate", "Owner"} },
			[]string{`auth.apiKeys[0].roles[1]: "Owner" is not a role, use one of: Acmebot.IssueCertificate, Acmebot.RevokeCertificate, Certkeeper.Reader, Certkeeper.ReadCertificate, Certkeeper.Admin`}},
		{"apiKey every role", func(c *Config) {
			c.Auth.APIKeys[0].Roles = []string{"Acmebot.IssueCertificate", "Acmebot.RevokeCertificate", "Certkeeper.Reader", "Certkeeper.ReadCertificate", "Certkeeper.Admin"}
		}, nil},
		// jobs
		{"jobs workers zero", func(c *Config) { c.Jobs.Workers = 0 }, []string{"jobs.workers: must be positive"}},
		{"jobs timeout zero", func(c *Config) { c.Jobs.Timeout = 0 }, []string{"jobs.timeout: must be positive"}},
		{"jobs rescueAfter zero", func(c *Config) { c.Jobs.RescueAfter = 0 }, []string{"jobs.rescueAfter: must be at least 2s"}},
		{"jobs rescueAfter too short", func(c *Config) { c.Jobs.RescueAfter = 1999 * time.Millisecond },
			[]string{"jobs.rescueAfter: must be at least 2s"}},
		{"jobs rescueAfter 2s", func(c *Config) { c.Jobs.RescueAfter = 2 * time.Second }, nil},
		{"jobs rescueAfter shorter than timeout", func(c *Config) { c.Jobs.RescueAfter = time.Minute }, nil},
		{"jobs shutdownGrace zero", func(c *Config) { c.Jobs.ShutdownGrace = 0 }, []string{"jobs.shutdownGrace: must be positive"}},
		// housekeeping
		{"housekeeping interval zero", func(c *Config) { c.Housekeeping.Interval = 0 }, []string{"housekeeping.interval: must be positive"}},
		{"housekeeping operationRetention negative", func(c *Config) { c.Housekeeping.OperationRetention = -time.Hour },
			[]string{"housekeeping.operationRetention: must be positive"}},
		{"housekeeping jobRetention zero", func(c *Config) { c.Housekeeping.JobRetention = 0 }, []string{"housekeeping.jobRetention: must be positive"}},
		{"housekeeping short", func(c *Config) {
			c.Housekeeping = Housekeeping{Interval: time.Second, OperationRetention: time.Second, JobRetention: time.Second}
		}, nil},
		// log
		{"log level", func(c *Config) { c.Log.Level = "trace" }, []string{`log.level: "trace" is not a level, use one of: debug, info, warn, error`}},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, []string{`log.format: "xml" is not a format, use one of: text, json`}},
		{"log debug json", func(c *Config) { c.Log.Level = "debug"; c.Log.Format = "json" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if diff := cmp.Diff(tt.want, problemTexts(err)); diff != "" {
				t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Listen = "nowhere"
	c.ACME.Endpoint = "http://ca.example.com/"
	c.DNS.Providers[0].RFC2136.TSIGSecret = ""
	c.Auth.APIKeys[0].Roles = []string{"Root"}
	c.Log.Format = "yaml"
	err := c.Validate()
	want := []string{
		`listen: "nowhere" is not host:port`,
		`acme.endpoint: "http://ca.example.com/" must use https (http only for 127.0.0.1 or localhost)`,
		"dns.providers[0].tsigSecret: required",
		`auth.apiKeys[0].roles[0]: "Root" is not a role, use one of: Acmebot.IssueCertificate, Acmebot.RevokeCertificate, Certkeeper.Reader, Certkeeper.ReadCertificate, Certkeeper.Admin`,
		`log.format: "yaml" is not a format, use one of: text, json`,
	}
	if diff := cmp.Diff(want, problemTexts(err)); diff != "" {
		t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
	}
}

func TestValidateHidesSecrets(t *testing.T) {
	t.Parallel()
	const (
		dbPassword  = "db-password-s3cr3t"
		masterKey   = "master-key-not-base64-s3cr3t"
		tsigSecret  = "tsig-secret-not-base64-s3cr3t!"
		shortAPIKey = "s3cr3t-short"
	)
	c := validConfig()
	c.Database = "mysql://user:" + dbPassword + "@db/x"
	c.MasterKey = masterKey
	c.DNS.Providers[0].RFC2136.TSIGSecret = tsigSecret
	c.Auth.APIKeys[0].Key = shortAPIKey
	c.Auth.APIKeys = append(c.Auth.APIKeys, APIKey{Name: "dup", Key: testCustomAPIKey}, APIKey{Name: "dup2", Key: testCustomAPIKey})
	err := c.Validate()
	if len(problemTexts(err)) != 5 {
		t.Fatalf("Validate() = %v, want 5 problems", err)
	}
	for _, s := range []string{dbPassword, masterKey, tsigSecret, shortAPIKey, testCustomAPIKey} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("Validate() error %q contains secret %q", err, s)
		}
	}
}

// typeList is how problems list the supported provider types.
var typeList = strings.Join(ProviderTypes, ", ")
