package config

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultCAName is the name of the CA that acme.endpoint configures.
const DefaultCAName = "default"

// CA is one named ACME certificate authority of the cas list.
type CA struct {
	// Name identifies the CA in defaultCAs, in issue requests ("ca") and in
	// GET /api/account?ca=.
	Name string `yaml:"name"`
	// Endpoint is the CA's directory URL or the short name of a well-known
	// CA (see KnownCAs); empty means Name when Name is such a short name.
	Endpoint string `yaml:"endpoint"`
	// CABundle is a PEM file of extra roots trusted for the CA's HTTPS API.
	CABundle string   `yaml:"caBundle"`
	Contacts []string `yaml:"contacts"`
	// Profile is the ACME profile used when a certificate names none.
	Profile                string `yaml:"profile"`
	ExternalAccountBinding *EAB   `yaml:"externalAccountBinding"`
}

// EAB is an External Account Binding (RFC 8555 section 7.3.4): the key id
// and MAC key a CA hands out to tie the ACME account to a customer account.
type EAB struct {
	KeyID string `yaml:"keyId"`
	// HMACKey is the MAC key, base64url as CAs show it (padded or not);
	// HMACKeyFile names a file holding it.
	HMACKey     secret.String `yaml:"hmacKey"`
	HMACKeyFile string        `yaml:"hmacKeyFile"`
	// Algorithm is HS256 (the default), HS384 or HS512.
	Algorithm string `yaml:"algorithm"`
}

// EABAlgorithms lists the accepted EAB MAC algorithms.
var EABAlgorithms = []string{"HS256", "HS384", "HS512"}

// DefaultEABAlgorithm is used when EAB.Algorithm is empty.
const DefaultEABAlgorithm = "HS256"

// KnownCA is a public ACME CA that can be named by a short name instead of
// its directory URL.
type KnownCA struct {
	// ShortName is what endpoint (or name) may say instead of the URL.
	ShortName    string
	Description  string
	DirectoryURL string
	// RequiresEAB is true when the CA refuses accounts without an External
	// Account Binding.
	RequiresEAB bool
}

// KnownCAs are the well-known directories, by short name.
var KnownCAs = []KnownCA{
	{"letsencrypt", "Let's Encrypt", "https://acme-v02.api.letsencrypt.org/directory", false},
	{"letsencrypt-staging", "Let's Encrypt staging", "https://acme-staging-v02.api.letsencrypt.org/directory", false},
	{"zerossl", "ZeroSSL", "https://acme.zerossl.com/v2/DV90", true},
	{"googletrust", "Google Trust Services", "https://dv.acme-v02.api.pki.goog/directory", true},
	{"googletrust-staging", "Google Trust Services staging", "https://dv.acme-v02.test-api.pki.goog/directory", true},
	{"sslcomrsa", "SSL.com (RSA chain)", "https://acme.ssl.com/sslcom-dv-rsa", true},
	{"sslcomecc", "SSL.com (ECDSA chain)", "https://acme.ssl.com/sslcom-dv-ecc", true},
	{"buypass", "Buypass", "https://api.buypass.com/acme/directory", false},
	{"buypass-staging", "Buypass staging", "https://api.test4.buypass.no/acme/directory", false},
	{"actalis", "Actalis", "https://acme-api.actalis.com/acme/directory", true},
}

// knownCA returns the well-known CA with short name or directory URL s.
func knownCA(s string) (KnownCA, bool) {
	for _, k := range KnownCAs {
		if strings.EqualFold(s, k.ShortName) || s == k.DirectoryURL {
			return k, true
		}
	}
	return KnownCA{}, false
}

// ResolveEndpoint returns the directory URL of a short name (see KnownCAs),
// or endpoint unchanged.
func ResolveEndpoint(endpoint string) string {
	if k, ok := knownCA(endpoint); ok {
		return k.DirectoryURL
	}
	return endpoint
}

func knownShortNames() string {
	names := make([]string, len(KnownCAs))
	for i, k := range KnownCAs {
		names[i] = k.ShortName
	}
	return strings.Join(names, ", ")
}

// caNamePattern is the shape of a CA name.
var caNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// AllCAs returns every configured CA with its endpoint resolved to a
// directory URL: "default" from acme (unless its endpoint is empty) first,
// then cas in order. An EAB without an algorithm gets DefaultEABAlgorithm.
func (c *Config) AllCAs() []CA {
	var out []CA
	if c.ACME.Endpoint != "" {
		out = append(out, CA{
			Name: DefaultCAName, Endpoint: ResolveEndpoint(c.ACME.Endpoint), CABundle: c.ACME.CABundle,
			Contacts: c.ACME.Contacts, Profile: c.ACME.Profile, ExternalAccountBinding: withAlgorithm(c.ACME.ExternalAccountBinding),
		})
	}
	for _, ca := range c.CAs {
		if ca.Endpoint == "" {
			ca.Endpoint = ca.Name
		}
		ca.Endpoint = ResolveEndpoint(ca.Endpoint)
		ca.ExternalAccountBinding = withAlgorithm(ca.ExternalAccountBinding)
		out = append(out, ca)
	}
	return out
}

func withAlgorithm(e *EAB) *EAB {
	if e == nil {
		return nil
	}
	cp := *e
	if cp.Algorithm == "" {
		cp.Algorithm = DefaultEABAlgorithm
	}
	cp.Algorithm = strings.ToUpper(cp.Algorithm)
	return &cp
}

// DefaultCAOrder returns the CAs tried, in order, for a certificate that
// names none: defaultCAs when set; else "default" when cas is empty; else
// every CA of cas in order.
func (c *Config) DefaultCAOrder() []string {
	if len(c.DefaultCAs) > 0 {
		return slices.Clone(c.DefaultCAs)
	}
	if len(c.CAs) == 0 {
		return []string{DefaultCAName}
	}
	names := make([]string, len(c.CAs))
	for i, ca := range c.CAs {
		names[i] = ca.Name
	}
	return names
}

// validateCAs reports the problems of acme's EAB, cas and defaultCAs. acme's
// own keys are checked by ACME.validate.
func (c *Config) validateCAs(p *problems) {
	if c.ACME.Endpoint == "" && len(c.CAs) == 0 {
		p.add("acme.endpoint", "required (or configure cas)")
	}
	urls := map[string]string{} // directory URL -> key path of the CA that has it
	if c.ACME.Endpoint != "" {
		urls[ResolveEndpoint(c.ACME.Endpoint)] = "acme.endpoint"
		if k, ok := knownCA(c.ACME.Endpoint); ok && k.RequiresEAB && c.ACME.ExternalAccountBinding == nil {
			p.add("acme.externalAccountBinding", "required: %s", eabRequired(k))
		}
	}
	if e := c.ACME.ExternalAccountBinding; e != nil {
		e.validate(p, "acme.externalAccountBinding")
	}
	names := map[string]int{}
	for i, ca := range c.CAs {
		path := fmt.Sprintf("cas[%d]", i)
		switch {
		case ca.Name == "":
			p.add(path+".name", "required")
		case !caNamePattern.MatchString(ca.Name):
			p.add(path+".name", "%q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ca.Name)
		case ca.Name == DefaultCAName && c.ACME.Endpoint != "":
			p.add(path+".name", "%q is the name of the CA acme.endpoint configures", ca.Name)
		default:
			if first, ok := names[ca.Name]; ok {
				p.add(path+".name", "%q is already the name of cas[%d]", ca.Name, first)
			} else {
				names[ca.Name] = i
			}
		}
		endpoint := ca.Endpoint
		if endpoint == "" {
			if _, ok := knownCA(ca.Name); !ok {
				p.add(path+".endpoint", "required (or name the CA by a short name: %s)", knownShortNames())
			}
			endpoint = ca.Name
		} else if err := checkCAEndpoint(endpoint); err != nil {
			p.add(path+".endpoint", "%v", err)
		}
		if u := ResolveEndpoint(endpoint); u != "" {
			if other, ok := urls[u]; ok {
				p.add(path+".endpoint", "%s is also the directory of %s; one ACME account per directory: give that CA the settings instead", u, other)
			} else {
				urls[u] = path + ".endpoint"
			}
		}
		if k, ok := knownCA(endpoint); ok && k.RequiresEAB && ca.ExternalAccountBinding == nil {
			p.add(path+".externalAccountBinding", "required: %s", eabRequired(k))
		}
		for j, contact := range ca.Contacts {
			if err := checkEmail(contact); err != nil {
				p.add(fmt.Sprintf("%s.contacts[%d]", path, j), "%v", err)
			}
		}
		if ca.CABundle != "" {
			if err := checkCABundle(ca.CABundle); err != nil {
				p.add(path+".caBundle", "%v", err)
			}
		}
		if e := ca.ExternalAccountBinding; e != nil {
			e.validate(p, path+".externalAccountBinding")
		}
	}
	all := map[string]bool{}
	for _, ca := range c.AllCAs() {
		all[ca.Name] = true
	}
	seen := map[string]bool{}
	for i, name := range c.DefaultCAs {
		path := fmt.Sprintf("defaultCAs[%d]", i)
		switch {
		case !all[name]:
			p.add(path, "%q is not a configured CA (%s)", name, strings.Join(caNames(c.AllCAs()), ", "))
		case seen[name]:
			p.add(path, "%q is listed twice", name)
		}
		seen[name] = true
	}
}

func caNames(cas []CA) []string {
	out := make([]string, len(cas))
	for i, ca := range cas {
		out[i] = ca.Name
	}
	return out
}

func eabRequired(k KnownCA) string {
	return fmt.Sprintf("%s requires an External Account Binding (keyId and hmacKey from the CA's account page)", k.Description)
}

// checkCAEndpoint accepts a well-known short name or what
// checkACMEEndpoint accepts.
func checkCAEndpoint(s string) error {
	if _, ok := knownCA(s); ok {
		return nil
	}
	if !strings.Contains(s, "://") && !strings.Contains(s, "/") {
		return fmt.Errorf("%q is neither an https URL nor a known CA (%s)", s, knownShortNames())
	}
	return checkACMEEndpoint(s)
}

func (e *EAB) validate(p *problems, path string) {
	if e.KeyID == "" {
		p.add(path+".keyId", "required")
	}
	if e.HMACKey == "" {
		p.add(path+".hmacKey", "required")
	} else if key, err := DecodeHMACKey(e.HMACKey.Reveal()); err != nil {
		p.add(path+".hmacKey", "must be base64url (as the CA shows it)")
	} else if len(key) < 16 {
		p.add(path+".hmacKey", "must be at least 16 bytes; it is %d", len(key))
	}
	if e.Algorithm != "" && !slices.Contains(EABAlgorithms, strings.ToUpper(e.Algorithm)) {
		p.add(path+".algorithm", "%q is not supported, use one of: %s", e.Algorithm, strings.Join(EABAlgorithms, ", "))
	}
}

// DecodeHMACKey decodes an EAB MAC key given in base64url, with or without
// padding, or in standard base64. Its error never holds the key.
func DecodeHMACKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("the EAB MAC key is not base64url")
}

// readCASecretFiles reads every hmacKeyFile into its hmacKey, returning one
// problem per key set in both forms and per unreadable file.
func (c *Config) readCASecretFiles() []error {
	var problems []error
	read := func(path string, e *EAB) {
		if e == nil || e.HMACKeyFile == "" {
			return
		}
		if e.HMACKey != "" {
			problems = append(problems, fieldError(path+".hmacKeyFile", "must not be set together with hmacKey"))
			return
		}
		s, err := readSecretFile(e.HMACKeyFile)
		if err != nil {
			problems = append(problems, fieldError(path+".hmacKeyFile", "%v", err))
			return
		}
		e.HMACKey = s
	}
	read("acme.externalAccountBinding", c.ACME.ExternalAccountBinding)
	for i := range c.CAs {
		read(fmt.Sprintf("cas[%d].externalAccountBinding", i), c.CAs[i].ExternalAccountBinding)
	}
	return problems
}

// deriveCAs replaces short names in acme.endpoint and cas endpoints with
// their directory URLs.
func (c *Config) deriveCAs() {
	c.ACME.Endpoint = ResolveEndpoint(c.ACME.Endpoint)
	for i := range c.CAs {
		if c.CAs[i].Endpoint != "" {
			c.CAs[i].Endpoint = ResolveEndpoint(c.CAs[i].Endpoint)
		}
	}
}
