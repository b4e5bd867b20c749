package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Default values.
const (
	DefaultListen             = "127.0.0.1:8080"
	DefaultDataDir            = "./data"
	DefaultACMEEndpoint       = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultPropagationTimeout = 5 * time.Minute
	DefaultTTL                = 60
	DefaultTSIGAlgorithm      = "hmac-sha256"
	DefaultAPIKeyHeaderName   = "X-Api-Key"
	DefaultWorkers            = 20
	DefaultJobTimeout         = 15 * time.Minute
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "text"

	// masterKeyFileName and databaseFileName sit in DataDir.
	masterKeyFileName = "master.key"
	databaseFileName  = "certkeeper.db"
)

// The environment variables Load reads. Their names are a public contract.
// An empty value counts as unset.
const (
	EnvListen        = "CERTKEEPER_LISTEN"
	EnvDataDir       = "CERTKEEPER_DATA_DIR"
	EnvDatabase      = "CERTKEEPER_DATABASE"
	EnvACMEEndpoint  = "CERTKEEPER_ACME_ENDPOINT"
	EnvMasterKey     = "CERTKEEPER_MASTER_KEY"
	EnvMasterKeyFile = "CERTKEEPER_MASTER_KEY_FILE"
	EnvLogLevel      = "CERTKEEPER_LOG_LEVEL"
	EnvLogFormat     = "CERTKEEPER_LOG_FORMAT"
)

// Default returns the configuration used when neither a file nor the
// environment says otherwise. It is valid as it is.
func Default() Config {
	c := defaults()
	c.derive()
	return c
}

// defaults is Default without the values derived from others.
func defaults() Config {
	return Config{
		Listen:  DefaultListen,
		DataDir: DefaultDataDir,
		ACME:    ACME{Endpoint: DefaultACMEEndpoint},
		DNS:     DNS{PropagationTimeout: DefaultPropagationTimeout, FollowCNAMEs: true},
		Jobs:    Jobs{Workers: DefaultWorkers, Timeout: DefaultJobTimeout, RescueAfter: DefaultRescueAfter, ShutdownGrace: DefaultShutdownGrace},
		Auth:    Auth{RateLimit: DefaultRateLimit},
		Log:     Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Delivery: Delivery{Timeout: DefaultDeliveryTimeout, RetryMin: DefaultDeliveryRetryMin,
			RetryMax: DefaultDeliveryRetryMax, MaxAttempts: DefaultDeliveryMaxAttempts},
		Renewal:      defaultRenewal(),
		Housekeeping: defaultHousekeeping(),
	}
}

// derive fills the defaults that depend on other values: the master key file
// in DataDir, each provider's propagation
// timeout from DNS.PropagationTimeout, and the trailing slash of Custom DNS
// endpoints.
func (c *Config) derive() {
	if c.MasterKeyFile == "" && c.DataDir != "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, masterKeyFileName)
	}
	c.deriveCAs()
	for i := range c.DNS.Providers {
		p := &c.DNS.Providers[i]
		if p.PropagationTimeout == 0 {
			p.PropagationTimeout = c.DNS.PropagationTimeout
		}
		if p.CustomDNS != nil && p.CustomDNS.Endpoint != "" && !strings.HasSuffix(p.CustomDNS.Endpoint, "/") {
			p.CustomDNS.Endpoint += "/"
		}
	}
}

// Load returns the configuration: the defaults, then the YAML file at path
// (none when path is empty), then the CERTKEEPER_* variables that env returns
// (os.Getenv in production; nil reads none), then every secret named by a
// …File key read from its file. The result is validated: the error, if any,
// is every problem found, joined with errors.Join, each naming its key path.
// Error texts never contain secret values.
//
// The file is decoded strictly: a key certkeeper does not know is an error
// naming the key and its line.
func Load(path string, env func(string) string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading config file: %w", err)
		}
	}
	c, err := load(data, env)
	if err != nil && path != "" {
		return nil, fmt.Errorf("loading config file %s: %w", path, err)
	}
	return c, err
}

// load is Load on the file's contents.
func load(data []byte, env func(string) string) (*Config, error) {
	c := defaults()
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	if env == nil {
		env = func(string) string { return "" }
	}
	c.applyEnv(env)
	var problems []error
	problems = append(problems, c.readSecretFiles()...)
	problems = append(problems, c.readCASecretFiles()...)
	c.derive()
	problems = append(problems, c.problems()...)
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return &c, nil
}

// decode decodes one YAML document from data onto c, rejecting unknown keys.
// Empty data (or a document of only comments) leaves c as it is.
func decode(data []byte, c *Config) error {
	d := yaml.NewDecoder(bytes.NewReader(data))
	d.KnownFields(true)
	if err := d.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("decoding YAML: %w", err)
	}
	var next yaml.Node
	if err := d.Decode(&next); !errors.Is(err, io.EOF) {
		return errors.New("decoding YAML: the file holds more than one document")
	}
	return nil
}

// applyEnv overrides c with the environment variables that are set.
func (c *Config) applyEnv(env func(string) string) {
	set := func(dst *string, name string) {
		if v := env(name); v != "" {
			*dst = v
		}
	}
	setSecret := func(dst *secret.String, name string) {
		if v := env(name); v != "" {
			*dst = secret.String(v)
		}
	}
	set(&c.Listen, EnvListen)
	set(&c.DataDir, EnvDataDir)
	setSecret(&c.Database, EnvDatabase)
	set(&c.ACME.Endpoint, EnvACMEEndpoint)
	setSecret(&c.MasterKey, EnvMasterKey)
	set(&c.MasterKeyFile, EnvMasterKeyFile)
	set(&c.Log.Level, EnvLogLevel)
	set(&c.Log.Format, EnvLogFormat)
}

// readSecretFiles reads every secret given as a …File key into its field. It
// returns one problem per key set in both forms and per unreadable file.
func (c *Config) readSecretFiles() []error {
	var problems []error
	read := func(path string, dst *secret.String, file string) {
		if file == "" {
			return
		}
		if *dst != "" {
			problems = append(problems, fieldError(path+"File", "must not be set together with %s", lastKey(path)))
			return
		}
		s, err := readSecretFile(file)
		if err != nil {
			problems = append(problems, fieldError(path+"File", "%v", err))
			return
		}
		*dst = s
	}
	for i := range c.DNS.Providers {
		p := &c.DNS.Providers[i]
		base := fmt.Sprintf("dns.providers[%d].", i)
		if b := p.Block(); b != nil {
			secretFields(b, func(key string, value *secret.String, file *string) {
				if file != nil {
					read(base+key, value, *file)
				}
			})
		}
	}
	for i := range c.Auth.APIKeys {
		k := &c.Auth.APIKeys[i]
		read(fmt.Sprintf("auth.apiKeys[%d].key", i), &k.Key, k.KeyFile)
	}
	c.readDestinationSecrets(read)
	c.Webhook.readFiles(read)
	return problems
}

// readSecretFile returns the contents of file without trailing line breaks.
// Its errors name the file but never hold its contents.
func readSecretFile(file string) (secret.String, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	return secret.String(strings.TrimRight(string(data), "\r\n")), nil
}

// lastKey returns the last element of a key path.
func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// SQLitePath returns the SQLite database file, <dataDir>/certkeeper.db, or
// "" when Database names a PostgreSQL server.
func (c *Config) SQLitePath() string {
	if c.IsPostgres() {
		return ""
	}
	return filepath.Join(c.DataDir, databaseFileName)
}

// IsPostgres reports whether the database is PostgreSQL (Database is set)
// rather than the embedded SQLite file.
func (c *Config) IsPostgres() bool { return c.Database != "" }

// Keys returns the configured API keys, hashed, as an authenticator for the
// API. The keys themselves are not kept.
func (a Auth) Keys() *auth.Keys {
	keys := make([]auth.Key, 0, len(a.APIKeys))
	for _, k := range a.APIKeys {
		roles := make([]auth.Role, len(k.Roles))
		for i, r := range k.Roles {
			roles[i] = auth.Role(r)
		}
		keys = append(keys, auth.Key{Name: k.Name, Hash: auth.HashKey(k.Key.Reveal()), Roles: roles})
	}
	return auth.NewKeys(keys, a.RequireRoles)
}
