package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// ProviderSettings is the typed block of one DNS provider type: the keys
// that sit beside the common ones (name, type, zones, ttl,
// propagationTimeout) in a provider's YAML mapping. Each type has its own
// struct; a field of type secret.String with YAML key k may also be given
// as a file in the string field with key kFile.
type ProviderSettings interface {
	// validate adds the block's problems under path.
	validate(p *problems, path string)
}

// providerTypes maps each DNS provider type to a new block with its
// defaults. It is the list of types the configuration accepts; the map
// from type to implementation is in internal/app.
var providerTypes = map[string]func() ProviderSettings{
	ProviderRFC2136:         func() ProviderSettings { return &RFC2136{TSIGAlgorithm: DefaultTSIGAlgorithm} },
	ProviderCustomDNS:       func() ProviderSettings { return &CustomDNS{APIKeyHeaderName: DefaultAPIKeyHeaderName} },
	ProviderCloudflare:      func() ProviderSettings { return &Cloudflare{} },
	ProviderRoute53:         func() ProviderSettings { return &Route53{} },
	ProviderAzureDNS:        func() ProviderSettings { return &AzureDNS{} },
	ProviderAzurePrivateDNS: func() ProviderSettings { return &AzureDNS{} },
	ProviderGoogleCloudDNS:  func() ProviderSettings { return &GoogleCloudDNS{} },
	ProviderGoDaddy:         func() ProviderSettings { return &GoDaddy{} },
	ProviderPowerDNS:        func() ProviderSettings { return &PowerDNS{ServerID: "localhost"} },
	ProviderDigitalOcean:    func() ProviderSettings { return &DigitalOcean{} },
	ProviderHetzner:         func() ProviderSettings { return &Hetzner{} },
	ProviderHTTPReq:         func() ProviderSettings { return &HTTPReq{} },
	ProviderExec:            func() ProviderSettings { return &Exec{} },
	ProviderACMEDNS:         func() ProviderSettings { return &ACMEDNS{} },
	ProviderDuckDNS:         func() ProviderSettings { return &DuckDNS{} },
	ProviderGandi:           func() ProviderSettings { return &Gandi{} },
	ProviderDeSEC:           func() ProviderSettings { return &DeSEC{} },
	ProviderPorkbun:         func() ProviderSettings { return &Porkbun{} },
	ProviderLinode:          func() ProviderSettings { return &Linode{} },
	ProviderIONOS:           func() ProviderSettings { return &IONOS{} },
	ProviderDNSMadeEasy:     func() ProviderSettings { return &DNSMadeEasy{} },
	ProviderOVH:             func() ProviderSettings { return &OVH{} },
	ProviderTransIP:         func() ProviderSettings { return &TransIP{} },
	ProviderNamecheap:       func() ProviderSettings { return &Namecheap{} },
	ProviderAkamai:          func() ProviderSettings { return &Akamai{} },
}

// unlistedTypes are the provider types that cannot list their zones, so
// zones must be configured.
var unlistedTypes = []string{ProviderRFC2136, ProviderHTTPReq, ProviderExec, ProviderACMEDNS, ProviderDuckDNS}

// ProviderTypes lists the supported DNS provider types, sorted.
var ProviderTypes = slices.Sorted(maps.Keys(providerTypes))

// DNS provider types beyond rfc2136 and customDns.
const (
	ProviderCloudflare      = "cloudflare"
	ProviderRoute53         = "route53"
	ProviderAzureDNS        = "azureDns"
	ProviderAzurePrivateDNS = "azurePrivateDns"
	ProviderGoogleCloudDNS  = "googleCloudDns"
	ProviderGoDaddy         = "goDaddy"
	ProviderPowerDNS        = "powerdns"
	ProviderDigitalOcean    = "digitalocean"
	ProviderHetzner         = "hetzner"
	ProviderHTTPReq         = "httpreq"
	ProviderExec            = "exec"
	ProviderACMEDNS         = "acmeDns"
	ProviderDuckDNS         = "duckdns"
	ProviderGandi           = "gandi"
	ProviderDeSEC           = "desec"
	ProviderPorkbun         = "porkbun"
	ProviderLinode          = "linode"
	ProviderIONOS           = "ionos"
	ProviderDNSMadeEasy     = "dnsMadeEasy"
	ProviderOVH             = "ovh"
	ProviderTransIP         = "transip"
	ProviderNamecheap       = "namecheap"
	ProviderAkamai          = "akamai"
)

// Block returns the typed block of p's type: RFC2136, CustomDNS or
// Settings; nil when it is missing.
func (p *DNSProvider) Block() ProviderSettings {
	switch p.Type {
	case ProviderRFC2136:
		if p.RFC2136 != nil {
			return p.RFC2136
		}
	case ProviderCustomDNS:
		if p.CustomDNS != nil {
			return p.CustomDNS
		}
	default:
		return p.Settings
	}
	return nil
}

// setBlock stores b in the field for its type.
func (p *DNSProvider) setBlock(b ProviderSettings) {
	switch b := b.(type) {
	case *RFC2136:
		p.RFC2136 = b
	case *CustomDNS:
		p.CustomDNS = b
	default:
		p.Settings = b
	}
}

// blockKeys returns the YAML keys of a block type.
func blockKeys(b ProviderSettings) []string {
	t := reflect.TypeOf(b).Elem()
	keys := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		if k := yamlKey(f); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" {
		return ""
	}
	return k
}

// secretFields calls fn for every secret field of b with its key and the
// file field that may hold it (nil when the type has none).
func secretFields(b ProviderSettings, fn func(key string, value *secret.String, file *string)) {
	v := reflect.ValueOf(b).Elem()
	t := v.Type()
	files := map[string]*string{}
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); strings.HasSuffix(k, "File") && t.Field(i).Type.Kind() == reflect.String {
			files[strings.TrimSuffix(k, "File")] = v.Field(i).Addr().Interface().(*string)
		}
	}
	for i := range t.NumField() {
		if s, ok := v.Field(i).Addr().Interface().(*secret.String); ok {
			k := yamlKey(t.Field(i))
			fn(k, s, files[k])
		}
	}
}

// require adds "required" under path.key when value is empty.
func require(p *problems, path, key, value string) bool {
	if value == "" {
		p.add(path+"."+key, "required")
		return false
	}
	return true
}

// checkEndpoint adds a problem when an optional API endpoint is set and not
// an absolute http or https URL.
func checkEndpoint(p *problems, path, key, value string) {
	if value == "" {
		return
	}
	if err := checkHTTPURL(value, false); err != nil {
		p.add(path+"."+key, "%v", err)
	}
}

// Cloudflare is an account at Cloudflare (API v4). Either an API token
// (Zone:Read and DNS:Edit; zoneApiToken may hold Zone:Read apart) or the
// legacy e-mail and global API key.
type Cloudflare struct {
	APIToken         secret.String `yaml:"apiToken"`
	APITokenFile     string        `yaml:"apiTokenFile"`
	ZoneAPIToken     secret.String `yaml:"zoneApiToken"`
	ZoneAPITokenFile string        `yaml:"zoneApiTokenFile"`
	Email            string        `yaml:"email"`
	APIKey           secret.String `yaml:"apiKey"`
	APIKeyFile       string        `yaml:"apiKeyFile"`
	// Endpoint replaces https://api.cloudflare.com/client/v4.
	Endpoint string `yaml:"endpoint"`
}

func (c *Cloudflare) validate(p *problems, path string) {
	switch {
	case c.APIToken != "" && (c.APIKey != "" || c.Email != ""):
		p.add(path, "set either apiToken or email and apiKey, not both")
	case c.APIToken == "" && c.APIKey == "" && c.Email == "":
		p.add(path+".apiToken", "required (or email and apiKey)")
	case c.APIToken == "":
		require(p, path, "email", c.Email)
		require(p, path, "apiKey", c.APIKey.Reveal())
	}
	checkEndpoint(p, path, "endpoint", c.Endpoint)
}

// Route53 is an AWS account's Route 53 hosted zones. Without keys the AWS
// SDK's default credential chain is used (instance role, IRSA web
// identity, shared config); roleArn is assumed on top of either.
type Route53 struct {
	AccessKeyID         string        `yaml:"accessKeyId"`
	SecretAccessKey     secret.String `yaml:"secretAccessKey"`
	SecretAccessKeyFile string        `yaml:"secretAccessKeyFile"`
	SessionToken        secret.String `yaml:"sessionToken"`
	SessionTokenFile    string        `yaml:"sessionTokenFile"`
	// Region signs the requests; default us-east-1 (Route 53 is global).
	Region  string `yaml:"region"`
	RoleARN string `yaml:"roleArn"`
	// HostedZoneID pins the hosted zone instead of finding it by name.
	HostedZoneID string `yaml:"hostedZoneId"`
	// Endpoint replaces https://route53.amazonaws.com.
	Endpoint string `yaml:"endpoint"`
}

func (r *Route53) validate(p *problems, path string) {
	if (r.AccessKeyID == "") != (r.SecretAccessKey == "") {
		p.add(path, "accessKeyId and secretAccessKey go together")
	}
	if r.SessionToken != "" && r.AccessKeyID == "" {
		p.add(path+".sessionToken", "needs accessKeyId and secretAccessKey")
	}
	if r.RoleARN != "" && !strings.HasPrefix(r.RoleARN, "arn:") {
		p.add(path+".roleArn", "%q is not an ARN", r.RoleARN)
	}
	checkEndpoint(p, path, "endpoint", r.Endpoint)
}

// AzureDNS is an Azure subscription's public (azureDns) or private
// (azurePrivateDns) DNS zones. Credentials: clientSecret with tenantId and
// clientId; or a workload identity (federatedTokenFile, tenantId,
// clientId); else the managed identity (clientId selects a user-assigned
// one).
type AzureDNS struct {
	SubscriptionID string `yaml:"subscriptionId"`
	// ResourceGroup restricts the zones to one resource group.
	ResourceGroup      string        `yaml:"resourceGroup"`
	TenantID           string        `yaml:"tenantId"`
	ClientID           string        `yaml:"clientId"`
	ClientSecret       secret.String `yaml:"clientSecret"`
	ClientSecretFile   string        `yaml:"clientSecretFile"`
	FederatedTokenFile string        `yaml:"federatedTokenFile"`
	// Cloud is AzurePublicCloud (default), AzureChinaCloud or
	// AzureUSGovernment.
	Cloud string `yaml:"cloud"`
	// ResourceManagerEndpoint and AuthorityHost replace the cloud's.
	ResourceManagerEndpoint string `yaml:"resourceManagerEndpoint"`
	AuthorityHost           string `yaml:"authorityHost"`
}

// AzureClouds lists the accepted AzureDNS.Cloud values.
var AzureClouds = []string{"AzurePublicCloud", "AzureChinaCloud", "AzureUSGovernment"}

func (a *AzureDNS) validate(p *problems, path string) {
	require(p, path, "subscriptionId", a.SubscriptionID)
	if a.ClientSecret != "" || a.FederatedTokenFile != "" {
		require(p, path, "tenantId", a.TenantID)
		require(p, path, "clientId", a.ClientID)
	}
	if a.ClientSecret != "" && a.FederatedTokenFile != "" {
		p.add(path, "set either clientSecret or federatedTokenFile, not both")
	}
	if a.Cloud != "" && !slices.Contains(AzureClouds, a.Cloud) {
		p.add(path+".cloud", "%q is not a cloud, use one of: %s", a.Cloud, strings.Join(AzureClouds, ", "))
	}
	checkEndpoint(p, path, "resourceManagerEndpoint", a.ResourceManagerEndpoint)
	checkEndpoint(p, path, "authorityHost", a.AuthorityHost)
}

// GoogleCloudDNS is a Google Cloud project's Cloud DNS managed zones. The
// credentials are a service account key (JSON); without one, Application
// Default Credentials (GKE workload identity, the metadata server).
type GoogleCloudDNS struct {
	Project               string        `yaml:"project"`
	ServiceAccountKey     secret.String `yaml:"serviceAccountKey"`
	ServiceAccountKeyFile string        `yaml:"serviceAccountKeyFile"`
	// Endpoint replaces https://dns.googleapis.com/dns/v1.
	Endpoint string `yaml:"endpoint"`
}

func (g *GoogleCloudDNS) validate(p *problems, path string) {
	require(p, path, "project", g.Project)
	checkEndpoint(p, path, "endpoint", g.Endpoint)
}

// GoDaddy is a GoDaddy account (production API key and secret).
type GoDaddy struct {
	APIKey        string        `yaml:"apiKey"`
	APISecret     secret.String `yaml:"apiSecret"`
	APISecretFile string        `yaml:"apiSecretFile"`
	// Endpoint replaces https://api.godaddy.com.
	Endpoint string `yaml:"endpoint"`
}

func (g *GoDaddy) validate(p *problems, path string) {
	require(p, path, "apiKey", g.APIKey)
	require(p, path, "apiSecret", g.APISecret.Reveal())
	checkEndpoint(p, path, "endpoint", g.Endpoint)
}

// PowerDNS is a PowerDNS Authoritative server's HTTP API.
type PowerDNS struct {
	// APIURL is the server's web server, such as http://ns1:8081.
	APIURL     string        `yaml:"apiUrl"`
	APIKey     secret.String `yaml:"apiKey"`
	APIKeyFile string        `yaml:"apiKeyFile"`
	// ServerID is the server in the API path; default localhost.
	ServerID string `yaml:"serverId"`
}

func (d *PowerDNS) validate(p *problems, path string) {
	if require(p, path, "apiUrl", d.APIURL) {
		checkEndpoint(p, path, "apiUrl", d.APIURL)
	}
	require(p, path, "apiKey", d.APIKey.Reveal())
	require(p, path, "serverId", d.ServerID)
}

// DigitalOcean is a DigitalOcean account (personal access token with the
// domain scope).
type DigitalOcean struct {
	APIToken     secret.String `yaml:"apiToken"`
	APITokenFile string        `yaml:"apiTokenFile"`
	// Endpoint replaces https://api.digitalocean.com.
	Endpoint string `yaml:"endpoint"`
}

func (d *DigitalOcean) validate(p *problems, path string) {
	require(p, path, "apiToken", d.APIToken.Reveal())
	checkEndpoint(p, path, "endpoint", d.Endpoint)
}

// Hetzner is a Hetzner Cloud project's DNS zones (the Cloud API, which
// replaced the DNS Console API).
type Hetzner struct {
	APIToken     secret.String `yaml:"apiToken"`
	APITokenFile string        `yaml:"apiTokenFile"`
	// Endpoint replaces https://api.hetzner.cloud/v1.
	Endpoint string `yaml:"endpoint"`
}

func (h *Hetzner) validate(p *problems, path string) {
	require(p, path, "apiToken", h.APIToken.Reveal())
	checkEndpoint(p, path, "endpoint", h.Endpoint)
}

// HTTPReq is any HTTP endpoint following lego's httpreq contract.
type HTTPReq struct {
	Endpoint     string        `yaml:"endpoint"`
	Username     string        `yaml:"username"`
	Password     secret.String `yaml:"password"`
	PasswordFile string        `yaml:"passwordFile"`
}

func (h *HTTPReq) validate(p *problems, path string) {
	if require(p, path, "endpoint", h.Endpoint) {
		checkEndpoint(p, path, "endpoint", h.Endpoint)
	}
	if h.Password != "" && h.Username == "" {
		p.add(path+".username", "required with password")
	}
}

// Exec is a program following lego's exec contract:
// <command> [args…] present|cleanup <fqdn> <value>.
type Exec struct {
	Command string   `yaml:"command"`
	Args    []string `yaml:"args"`
	// Timeout bounds one run; default 1m.
	Timeout time.Duration `yaml:"timeout"`
}

func (e *Exec) validate(p *problems, path string) {
	require(p, path, "command", e.Command)
	if e.Timeout < 0 {
		p.add(path+".timeout", "must not be negative")
	}
}

// ACMEDNS is one or more acme-dns accounts, given as the JSON lego and
// certbot store ({"example.com": {"username", "password", "fulldomain",
// "subdomain", "server_url"}}), inline or in accountsFile.
type ACMEDNS struct {
	// Endpoint is the server of accounts without server_url.
	Endpoint     string        `yaml:"endpoint"`
	Accounts     secret.String `yaml:"accounts"`
	AccountsFile string        `yaml:"accountsFile"`
}

func (a *ACMEDNS) validate(p *problems, path string) {
	checkEndpoint(p, path, "endpoint", a.Endpoint)
	require(p, path, "accounts", a.Accounts.Reveal())
}

// DuckDNS is a Duck DNS account; zones are its <name>.duckdns.org domains.
type DuckDNS struct {
	Token     secret.String `yaml:"token"`
	TokenFile string        `yaml:"tokenFile"`
	Endpoint  string        `yaml:"endpoint"`
}

func (d *DuckDNS) validate(p *problems, path string) {
	require(p, path, "token", d.Token.Reveal())
	checkEndpoint(p, path, "endpoint", d.Endpoint)
}

// Gandi is a Gandi organization's LiveDNS domains (personal access token).
type Gandi struct {
	PersonalAccessToken     secret.String `yaml:"personalAccessToken"`
	PersonalAccessTokenFile string        `yaml:"personalAccessTokenFile"`
	Endpoint                string        `yaml:"endpoint"`
}

func (g *Gandi) validate(p *problems, path string) {
	require(p, path, "personalAccessToken", g.PersonalAccessToken.Reveal())
	checkEndpoint(p, path, "endpoint", g.Endpoint)
}

// DeSEC is a deSEC account.
type DeSEC struct {
	APIToken     secret.String `yaml:"apiToken"`
	APITokenFile string        `yaml:"apiTokenFile"`
	Endpoint     string        `yaml:"endpoint"`
}

func (d *DeSEC) validate(p *problems, path string) {
	require(p, path, "apiToken", d.APIToken.Reveal())
	checkEndpoint(p, path, "endpoint", d.Endpoint)
}

// Porkbun is a Porkbun account (API access enabled per domain).
type Porkbun struct {
	APIKey           secret.String `yaml:"apiKey"`
	APIKeyFile       string        `yaml:"apiKeyFile"`
	SecretAPIKey     secret.String `yaml:"secretApiKey"`
	SecretAPIKeyFile string        `yaml:"secretApiKeyFile"`
	Endpoint         string        `yaml:"endpoint"`
}

func (k *Porkbun) validate(p *problems, path string) {
	require(p, path, "apiKey", k.APIKey.Reveal())
	require(p, path, "secretApiKey", k.SecretAPIKey.Reveal())
	checkEndpoint(p, path, "endpoint", k.Endpoint)
}

// Linode is a Linode (Akamai Cloud) account.
type Linode struct {
	APIToken     secret.String `yaml:"apiToken"`
	APITokenFile string        `yaml:"apiTokenFile"`
	Endpoint     string        `yaml:"endpoint"`
}

func (l *Linode) validate(p *problems, path string) {
	require(p, path, "apiToken", l.APIToken.Reveal())
	checkEndpoint(p, path, "endpoint", l.Endpoint)
}

// IONOS is an IONOS hosting account; the API key is "<prefix>.<secret>".
type IONOS struct {
	APIKey     secret.String `yaml:"apiKey"`
	APIKeyFile string        `yaml:"apiKeyFile"`
	Endpoint   string        `yaml:"endpoint"`
}

func (i *IONOS) validate(p *problems, path string) {
	if require(p, path, "apiKey", i.APIKey.Reveal()) && !strings.Contains(i.APIKey.Reveal(), ".") {
		p.add(path+".apiKey", "must be <public prefix>.<secret>")
	}
	checkEndpoint(p, path, "endpoint", i.Endpoint)
}

// DNSMadeEasy is a DNS Made Easy account.
type DNSMadeEasy struct {
	APIKey        string        `yaml:"apiKey"`
	APISecret     secret.String `yaml:"apiSecret"`
	APISecretFile string        `yaml:"apiSecretFile"`
	// Sandbox selects the sandbox API.
	Sandbox  bool   `yaml:"sandbox"`
	Endpoint string `yaml:"endpoint"`
}

func (d *DNSMadeEasy) validate(p *problems, path string) {
	require(p, path, "apiKey", d.APIKey)
	require(p, path, "apiSecret", d.APISecret.Reveal())
	checkEndpoint(p, path, "endpoint", d.Endpoint)
}

// OVH is an OVHcloud API application with a consumer key allowed GET,
// POST and DELETE on /domain/zone/*.
type OVH struct {
	// Endpoint is ovh-eu (default), ovh-ca, ovh-us, kimsufi-eu,
	// soyoustart-eu or a URL.
	Endpoint              string        `yaml:"endpoint"`
	ApplicationKey        string        `yaml:"applicationKey"`
	ApplicationSecret     secret.String `yaml:"applicationSecret"`
	ApplicationSecretFile string        `yaml:"applicationSecretFile"`
	ConsumerKey           secret.String `yaml:"consumerKey"`
	ConsumerKeyFile       string        `yaml:"consumerKeyFile"`
}

func (o *OVH) validate(p *problems, path string) {
	require(p, path, "applicationKey", o.ApplicationKey)
	require(p, path, "applicationSecret", o.ApplicationSecret.Reveal())
	require(p, path, "consumerKey", o.ConsumerKey.Reveal())
	if o.Endpoint != "" && !strings.Contains(o.Endpoint, "://") {
		switch o.Endpoint {
		case "ovh-eu", "ovh-ca", "ovh-us", "kimsufi-eu", "soyoustart-eu":
		default:
			p.add(path+".endpoint", "%q is not ovh-eu, ovh-ca, ovh-us, kimsufi-eu, soyoustart-eu or a URL", o.Endpoint)
		}
	} else {
		checkEndpoint(p, path, "endpoint", o.Endpoint)
	}
}
