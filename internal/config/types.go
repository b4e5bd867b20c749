// Package config holds certkeeper's configuration: one Config decoded strictly
// from a YAML file, overridden by CERTKEEPER_* environment variables, with
// secrets also read from files, and a Validate that reports every problem at
// once.
package config

import (
	"time"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// Config is the whole configuration. The YAML key names are a public
// contract: deployment scripts outside this repository use them.
type Config struct {
	// Listen is the address the HTTP API listens on.
	Listen string `yaml:"listen"`
	// PublicURL is the base URL used in Location headers behind a proxy;
	// empty means the scheme and Host of each request.
	PublicURL string `yaml:"publicURL"`
	// DataDir holds the SQLite database and the master key file.
	DataDir string `yaml:"dataDir"`
	// Database is empty for SQLite in DataDir, or a postgres:// URL.
	Database secret.String `yaml:"database"`
	// MasterKey is the base64 AES-256 key that encrypts private keys at rest;
	// when empty, MasterKeyFile (default <dataDir>/master.key, created with
	// mode 0600 on first start) holds it.
	MasterKey     secret.String `yaml:"masterKey"`
	MasterKeyFile string        `yaml:"masterKeyFile"`
	ACME          ACME          `yaml:"acme"`
	DNS           DNS           `yaml:"dns"`
	Auth          Auth          `yaml:"auth"`
	Jobs          Jobs          `yaml:"jobs"`
	Housekeeping  Housekeeping  `yaml:"housekeeping"` // issue 10
	Log           Log           `yaml:"log"`

	// Destinations are where certificates are delivered besides the
	// built-in store; DefaultDestinations names those used when a request
	// names none; Delivery tunes retries (issue 8).
	Destinations        []Destination `yaml:"destinations"`
	DefaultDestinations []string      `yaml:"defaultDestinations"`
	Delivery            Delivery      `yaml:"delivery"`
	// CAs are further named certificate authorities; acme above is the one
	// named "default". DefaultCAs are the names tried in order for a
	// certificate that names none (see cas.go).
	CAs        []CA     `yaml:"cas"`
	DefaultCAs []string `yaml:"defaultCAs"`
	// Renewal and Webhook are automatic renewal and its notifications (issue 5).
	Renewal Renewal  `yaml:"renewal"`
	Webhook Webhooks `yaml:"webhook"`
}

// ACME is the certificate authority.
type ACME struct {
	// Endpoint is the CA's directory URL.
	Endpoint string   `yaml:"endpoint"`
	Contacts []string `yaml:"contacts"`
	// CABundle is a PEM file of extra roots trusted for the CA's HTTPS API.
	CABundle string `yaml:"caBundle"`
	// Profile is the default ACME profile, checked against the directory.
	Profile string `yaml:"profile"`
	// ExternalAccountBinding is required by CAs such as ZeroSSL and Google
	// Trust Services.
	ExternalAccountBinding *EAB `yaml:"externalAccountBinding"`
}

// DNS is how DNS-01 challenges are answered.
type DNS struct {
	// Resolvers are host:port servers the propagation check asks; empty
	// means the zone's authoritative servers.
	Resolvers []string `yaml:"resolvers"`
	// PropagationTimeout bounds the wait for records to be visible; default 5m.
	PropagationTimeout time.Duration `yaml:"propagationTimeout"`
	// FollowCNAMEs writes a challenge record at the target of a CNAME at
	// _acme-challenge.<name> (chains too); default true.
	FollowCNAMEs bool          `yaml:"followCnames"`
	Providers    []DNSProvider `yaml:"providers"`
}

// DNSProvider is one configured DNS provider instance. Name, Type, Zones,
// TTL and PropagationTimeout are common to every type; exactly one of the
// typed blocks below is set, the one for Type, and holds the type's own keys
// (which sit beside the common keys in YAML).
type DNSProvider struct {
	// Name is the dnsProviderName clients see and send.
	Name string `yaml:"name"`
	// Type selects the implementation, one of ProviderTypes.
	Type  string   `yaml:"type"`
	Zones []string `yaml:"zones"`
	// TTL of the TXT records written; default 60.
	TTL int `yaml:"ttl"`
	// PropagationTimeout overrides DNS.PropagationTimeout for this provider.
	PropagationTimeout time.Duration `yaml:"propagationTimeout"`

	RFC2136   *RFC2136   `yaml:"-"`
	CustomDNS *CustomDNS `yaml:"-"`
	// Settings is the block of every other type (see ProviderTypes and
	// dnsproviders.go), such as *Cloudflare.
	Settings ProviderSettings `yaml:"-"`
}

// Provider types.
const (
	ProviderRFC2136   = "rfc2136"
	ProviderCustomDNS = "customDns"
)

// RFC2136 is a DNS server that accepts dynamic updates (RFC 2136) signed
// with TSIG (RFC 8945).
type RFC2136 struct {
	// Nameserver is host:port of the primary that takes updates.
	Nameserver     string        `yaml:"nameserver"`
	TSIGKeyName    string        `yaml:"tsigKeyName"`
	TSIGAlgorithm  string        `yaml:"tsigAlgorithm"`
	TSIGSecret     secret.String `yaml:"tsigSecret"`
	TSIGSecretFile string        `yaml:"tsigSecretFile"`
}

// CustomDNS is an HTTP API that follows Key Vault Acmebot's Custom DNS
// contract.
type CustomDNS struct {
	Endpoint         string        `yaml:"endpoint"`
	APIKey           secret.String `yaml:"apiKey"`
	APIKeyFile       string        `yaml:"apiKeyFile"`
	APIKeyHeaderName string        `yaml:"apiKeyHeaderName"`
}

// Auth is who may call the API.
type Auth struct {
	APIKeys []APIKey `yaml:"apiKeys"`
	// RequireRoles enforces roles; when false every authenticated caller may
	// issue, renew and revoke (Acmebot's default), but never read private
	// keys or administer.
	RequireRoles bool `yaml:"requireRoles"`
	// OIDC are the issuers whose bearer tokens are accepted (issue 7).
	OIDC []OIDC `yaml:"oidc"`
	// RateLimit limits issue and renew requests per caller.
	RateLimit RateLimit `yaml:"rateLimit"`
	// TrustedProxies are the addresses or CIDR ranges of reverse proxies
	// whose X-Forwarded-For header names the caller's address.
	TrustedProxies []string `yaml:"trustedProxies"`
}

// APIKey is a key configured in the file. Only a hash of it is kept.
type APIKey struct {
	Name    string        `yaml:"name"`
	Key     secret.String `yaml:"key"`
	KeyFile string        `yaml:"keyFile"`
	Roles   []string      `yaml:"roles"`
	// Zones limit the roles (and reading) to these zone patterns; empty is
	// every zone.
	Zones []string `yaml:"zones"`
}

// Jobs tunes the durable job queue.
type Jobs struct {
	// Workers is how many operations run at once; default 20.
	Workers int `yaml:"workers"`
	// Timeout bounds one attempt of a job; default 15m.
	Timeout time.Duration `yaml:"timeout"`
	// RescueAfter is how long a running job's replica may go silent before
	// another replica takes the job over (its process is presumed dead);
	// default 1m. A live replica renews its running jobs every quarter of
	// it, so it need not exceed Timeout. With SQLite (one process), jobs
	// left running by a previous process are taken over at start.
	RescueAfter time.Duration `yaml:"rescueAfter"`
	// ShutdownGrace is how long running operations may take to finish
	// after SIGTERM; then they are cancelled and handed back to the queue,
	// for another replica or the next start. Default 20s; stopping takes at
	// most about 30s more (cancelled operations remove their DNS records).
	ShutdownGrace time.Duration `yaml:"shutdownGrace"`
}

// Log is how the process logs.
type Log struct {
	// Level is debug, info, warn or error; default info.
	Level string `yaml:"level"`
	// Format is text or json; default text.
	Format string `yaml:"format"`
}
