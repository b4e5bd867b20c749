package config

import (
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// Destination types.
const (
	DestinationFiles         = "files"
	DestinationVault         = "vault"
	DestinationAzureKeyVault = "azureKeyVault"
)

// DestinationTypes lists the supported destination types.
var DestinationTypes = []string{DestinationFiles, DestinationVault, DestinationAzureKeyVault}

// Destination is one configured place certificates are delivered to
// besides the built-in store. Name and Type are common; exactly one typed
// block is set, the one for Type, whose keys sit beside them in YAML.
type Destination struct {
	// Name is what certificates and requests (destinations: [...]) use.
	Name string `yaml:"name"`
	// Type is files, vault or azureKeyVault.
	Type          string              `yaml:"type"`
	Files         *FilesDestination   `yaml:"-"`
	Vault         *VaultDestination   `yaml:"-"`
	AzureKeyVault *AzureKeyVaultBlock `yaml:"-"`
}

// FilesDestination is a directory tree <dir>/<name>/{cert,chain,fullchain,privkey}.pem.
type FilesDestination struct {
	Dir string `yaml:"dir"`
	// Owner and Group: a name or numeric id; empty keeps certkeeper's.
	Owner string `yaml:"owner"`
	Group string `yaml:"group"`
	// Mode for the certificate files (default 0644), KeyMode for
	// privkey.pem and cert.pfx (default 0600), DirMode for each
	// certificate's directory (default 0750). Octal, quoted or not.
	Mode    FileMode `yaml:"mode"`
	KeyMode FileMode `yaml:"keyMode"`
	DirMode FileMode `yaml:"dirMode"`
	// PFX also writes cert.pfx protected by PFXPassword.
	PFX             bool          `yaml:"pfx"`
	PFXPassword     secret.String `yaml:"pfxPassword"`
	PFXPasswordFile string        `yaml:"pfxPasswordFile"`
	// ReloadCommand runs with /bin/sh -c after a change.
	ReloadCommand string        `yaml:"reloadCommand"`
	ReloadTimeout time.Duration `yaml:"reloadTimeout"`
}

// VaultDestination is a HashiCorp Vault or OpenBao KV version 2 mount.
type VaultDestination struct {
	Address   string `yaml:"address"`
	Mount     string `yaml:"mount"`
	Path      string `yaml:"path"`
	Namespace string `yaml:"namespace"`
	// Auth is token (default), approle or kubernetes; AuthMount where the
	// method is mounted (default: its name).
	Auth      string        `yaml:"auth"`
	AuthMount string        `yaml:"authMount"`
	Token     secret.String `yaml:"token"`
	TokenFile string        `yaml:"tokenFile"`
	RoleID    string        `yaml:"roleId"`
	SecretID  secret.String `yaml:"secretId"`
	// SecretIDFile holds the AppRole secret id.
	SecretIDFile string `yaml:"secretIdFile"`
	// KubernetesRole and ServiceAccountTokenFile are for kubernetes auth.
	KubernetesRole          string `yaml:"kubernetesRole"`
	ServiceAccountTokenFile string `yaml:"serviceAccountTokenFile"`
	// CACert is a PEM file of roots trusted for the server.
	CACert string `yaml:"caCert"`
}

// AzureKeyVaultBlock is an Azure Key Vault.
type AzureKeyVaultBlock struct {
	VaultURL string `yaml:"vaultUrl"`
	// Credential is default, managedIdentity, workloadIdentity or
	// clientSecret.
	Credential       string        `yaml:"credential"`
	TenantID         string        `yaml:"tenantId"`
	ClientID         string        `yaml:"clientId"`
	ClientSecret     secret.String `yaml:"clientSecret"`
	ClientSecretFile string        `yaml:"clientSecretFile"`
	// FederatedTokenFile is workload identity's token (default from
	// AZURE_FEDERATED_TOKEN_FILE).
	FederatedTokenFile string `yaml:"federatedTokenFile"`
	// AuthorityHost is Entra ID's endpoint for sovereign clouds.
	AuthorityHost string `yaml:"authorityHost"`
	// DisableChallengeResourceVerification accepts a challenge resource
	// outside the vault's domain (Azure Stack Hub).
	DisableChallengeResourceVerification bool `yaml:"disableChallengeResourceVerification"`
}

// Delivery tunes how deliveries to destinations are retried.
type Delivery struct {
	// Timeout bounds one attempt at one destination; default 2m.
	Timeout time.Duration `yaml:"timeout"`
	// RetryMin is the wait before the first retry, doubled after each
	// failure up to RetryMax; defaults 30s and 1h.
	RetryMin time.Duration `yaml:"retryMin"`
	RetryMax time.Duration `yaml:"retryMax"`
	// MaxAttempts is how many attempts a delivery gets; default 20.
	MaxAttempts int `yaml:"maxAttempts"`
}

// Default delivery settings.
const (
	DefaultDeliveryTimeout     = 2 * time.Minute
	DefaultDeliveryRetryMin    = 30 * time.Second
	DefaultDeliveryRetryMax    = time.Hour
	DefaultDeliveryMaxAttempts = 20
)

// FileMode is a Unix permission mode written in octal ("0640" or 0640).
type FileMode fs.FileMode

// UnmarshalYAML reads the scalar's text as octal.
func (m *FileMode) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return typeError("line %d: a file mode must be octal, such as \"0640\"", node.Line)
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(node.Value, "0o"), 8, 32)
	if err != nil || v > 0o7777 {
		return typeError("line %d: %q is not an octal file mode such as \"0640\"", node.Line, node.Value)
	}
	*m = FileMode(v)
	return nil
}

var destinationCommonKeys = []string{"name", "type"}

var destinationTypeKeys = map[string][]string{
	DestinationFiles: {"dir", "owner", "group", "mode", "keyMode", "dirMode", "pfx", "pfxPassword",
		"pfxPasswordFile", "reloadCommand", "reloadTimeout"},
	DestinationVault: {"address", "mount", "path", "namespace", "auth", "authMount", "token", "tokenFile", "roleId",
		"secretId", "secretIdFile", "kubernetesRole", "serviceAccountTokenFile", "caCert"},
	DestinationAzureKeyVault: {"vaultUrl", "credential", "tenantId", "clientId", "clientSecret", "clientSecretFile",
		"federatedTokenFile", "authorityHost", "disableChallengeResourceVerification"},
}

// UnmarshalYAML implements yaml.Unmarshaler: the common keys and the keys
// of the destination's type in one mapping; any other key is an error.
func (d *Destination) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return typeError("line %d: a destination must be a mapping", node.Line)
	}
	typ, typeLine := "", node.Line
	for i := 0; i+1 < len(node.Content); i += 2 {
		if k, v := node.Content[i], node.Content[i+1]; k.Value == "type" && v.Kind == yaml.ScalarNode {
			typ, typeLine = v.Value, v.Line
		}
	}
	keys, ok := destinationTypeKeys[typ]
	if !ok {
		if typ == "" {
			return typeError("line %d: destination: type is required, one of: %s", node.Line, strings.Join(DestinationTypes, ", "))
		}
		return typeError("line %d: destination type %q is not supported, use one of: %s", typeLine, typ, strings.Join(DestinationTypes, ", "))
	}
	unknown := &yaml.TypeError{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if !slices.Contains(destinationCommonKeys, k.Value) && !slices.Contains(keys, k.Value) {
			unknown.Errors = append(unknown.Errors, fmt.Sprintf("line %d: field %s not valid in a destination of type %s", k.Line, k.Value, typ))
		}
	}
	if len(unknown.Errors) > 0 {
		return unknown
	}
	var common struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
	}
	if err := node.Decode(&common); err != nil {
		return err
	}
	out := Destination{Name: common.Name, Type: common.Type}
	var err error
	switch typ {
	case DestinationFiles:
		out.Files = &FilesDestination{}
		err = node.Decode(out.Files)
	case DestinationVault:
		out.Vault = &VaultDestination{}
		err = node.Decode(out.Vault)
	case DestinationAzureKeyVault:
		out.AzureKeyVault = &AzureKeyVaultBlock{}
		err = node.Decode(out.AzureKeyVault)
	}
	if err != nil {
		return err
	}
	*d = out
	return nil
}

// readDestinationSecrets reads the destinations' …File secrets.
func (c *Config) readDestinationSecrets(read func(path string, dst *secret.String, file string)) {
	for i := range c.Destinations {
		d := &c.Destinations[i]
		base := fmt.Sprintf("destinations[%d].", i)
		switch {
		case d.Files != nil:
			read(base+"pfxPassword", &d.Files.PFXPassword, d.Files.PFXPasswordFile)
		case d.Vault != nil:
			read(base+"token", &d.Vault.Token, d.Vault.TokenFile)
			read(base+"secretId", &d.Vault.SecretID, d.Vault.SecretIDFile)
		case d.AzureKeyVault != nil:
			read(base+"clientSecret", &d.AzureKeyVault.ClientSecret, d.AzureKeyVault.ClientSecretFile)
		}
	}
}

// validateDestinations adds the problems of destinations,
// defaultDestinations and delivery.
func (c *Config) validateDestinations(p *problems) {
	names := map[string]int{}
	for i := range c.Destinations {
		d := &c.Destinations[i]
		path := fmt.Sprintf("destinations[%d]", i)
		switch {
		case d.Name == "":
			p.add(path+".name", "required")
		case !destinationName(d.Name):
			p.add(path+".name", "%q must be letters, digits, '-' and '_'", d.Name)
		case names[d.Name] > 0:
			p.add(path+".name", "%q is already the name of destinations[%d]", d.Name, names[d.Name]-1)
		default:
			names[d.Name] = i + 1
		}
		switch {
		case d.Files != nil:
			d.Files.validate(p, path)
		case d.Vault != nil:
			d.Vault.validate(p, path)
		case d.AzureKeyVault != nil:
			d.AzureKeyVault.validate(p, path)
		case d.Type == "":
			p.add(path+".type", "required, one of: %s", strings.Join(DestinationTypes, ", "))
		default:
			p.add(path+".type", "%q is not supported, use one of: %s", d.Type, strings.Join(DestinationTypes, ", "))
		}
	}
	for i, n := range c.DefaultDestinations {
		if names[n] == 0 {
			p.add(fmt.Sprintf("defaultDestinations[%d]", i), "%q is not a configured destination", n)
		}
	}
	dl := &c.Delivery
	if dl.Timeout <= 0 {
		p.add("delivery.timeout", "must be positive")
	}
	if dl.RetryMin <= 0 {
		p.add("delivery.retryMin", "must be positive")
	}
	if dl.RetryMax < dl.RetryMin {
		p.add("delivery.retryMax", "must not be shorter than delivery.retryMin")
	}
	if dl.MaxAttempts < 1 {
		p.add("delivery.maxAttempts", "must be at least 1")
	}
}

func destinationName(s string) bool {
	for _, ch := range []byte(s) {
		if !isLetterDigit(ch) && ch != '-' && ch != '_' {
			return false
		}
	}
	return len(s) <= 63
}

func (f *FilesDestination) validate(p *problems, path string) {
	if f.Dir == "" {
		p.add(path+".dir", "required")
	} else if !strings.HasPrefix(f.Dir, "/") {
		p.add(path+".dir", "%q must be an absolute path", f.Dir)
	}
	if f.PFX && f.PFXPassword == "" {
		p.add(path+".pfxPassword", "required when pfx is true")
	}
	if f.ReloadTimeout < 0 {
		p.add(path+".reloadTimeout", "must not be negative")
	}
}

func (v *VaultDestination) validate(p *problems, path string) {
	if v.Address == "" {
		p.add(path+".address", "required")
	} else if err := checkHTTPURL(v.Address, false); err != nil {
		p.add(path+".address", "%v", err)
	}
	switch v.Auth {
	case "", "token":
		if v.Token == "" {
			p.add(path+".token", "required with token auth")
		}
	case "approle":
		if v.RoleID == "" {
			p.add(path+".roleId", "required with approle auth")
		}
		if v.SecretID == "" {
			p.add(path+".secretId", "required with approle auth")
		}
	case "kubernetes":
		if v.KubernetesRole == "" {
			p.add(path+".kubernetesRole", "required with kubernetes auth")
		}
	default:
		p.add(path+".auth", "%q is not supported, use token, approle or kubernetes", v.Auth)
	}
	if v.CACert != "" {
		if err := checkCABundle(v.CACert); err != nil {
			p.add(path+".caCert", "%v", err)
		}
	}
}

func (a *AzureKeyVaultBlock) validate(p *problems, path string) {
	if a.VaultURL == "" {
		p.add(path+".vaultUrl", "required")
	} else if u, err := url.Parse(a.VaultURL); err != nil || u.Scheme != "https" || u.Host == "" {
		p.add(path+".vaultUrl", "%q is not an https URL such as https://name.vault.azure.net", a.VaultURL)
	}
	switch a.Credential {
	case "", "default", "managedIdentity", "workloadIdentity":
	case "clientSecret":
		if a.TenantID == "" {
			p.add(path+".tenantId", "required with clientSecret")
		}
		if a.ClientID == "" {
			p.add(path+".clientId", "required with clientSecret")
		}
		if a.ClientSecret == "" {
			p.add(path+".clientSecret", "required with clientSecret")
		}
	default:
		p.add(path+".credential", "%q is not supported, use default, managedIdentity, workloadIdentity or clientSecret", a.Credential)
	}
	if a.AuthorityHost != "" {
		if err := checkHTTPURL(a.AuthorityHost, false); err != nil {
			p.add(path+".authorityHost", "%v", err)
		}
	}
}
