package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// minAPIKeyLength is the shortest API key accepted in the config.
const minAPIKeyLength = 16

// maxTTL is the largest TXT record TTL accepted, one day.
const maxTTL = 86400

// TSIGAlgorithms lists the accepted TSIG algorithms (RFC 8945 section 6);
// each may also be written with a trailing dot.
var TSIGAlgorithms = []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}

// LogLevels and LogFormats list the accepted Log values.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
)

// fieldError is one problem with the value at a key path. Its text never
// holds a secret value.
func fieldError(path, format string, args ...any) error {
	return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
}

// problems collects every problem found by Validate.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, fieldError(path, format, args...))
}

// Validate checks every value and returns every problem at once, joined with
// errors.Join, each naming its key path (for example
// "dns.providers[1].tsigSecret: required"). It returns nil when c is usable.
// The …File keys are read by Load, which also reports a secret given in both
// forms; Validate checks the secret values themselves. Validate reads the
// acme.caBundle file; it does not change c. Error texts never contain secret
// values.
func (c *Config) Validate() error { return errors.Join(c.problems()...) }

// problems returns every problem Validate reports.
func (c *Config) problems() problems {
	var p problems
	if err := checkHostPort(c.Listen); err != nil {
		p.add("listen", "%v", err)
	}
	if c.PublicURL != "" {
		if err := checkHTTPURL(c.PublicURL, false); err != nil {
			p.add("publicURL", "%v", err)
		}
	}
	if c.DataDir == "" {
		p.add("dataDir", "required")
	}
	if c.Database != "" {
		// The URL holds a password: say nothing about its value.
		u, err := url.Parse(c.Database.Reveal())
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.add("database", "must be empty (SQLite in dataDir) or a postgres:// or postgresql:// URL")
		}
	}
	if c.MasterKey != "" {
		if _, err := secret.ParseKey(c.MasterKey.Reveal()); err != nil {
			p.add("masterKey", "must be the base64 encoding of %d bytes", secret.KeySize)
		}
	}
	if c.MasterKey == "" && c.MasterKeyFile == "" {
		p.add("masterKeyFile", "required when masterKey is not set")
	}
	c.ACME.validate(&p)
	c.validateCAs(&p)
	c.DNS.validate(&p)
	c.Auth.validate(&p)
	c.Auth.validateAccess(&p)
	c.Jobs.validate(&p)
	c.Housekeeping.validate(&p)
	c.Log.validate(&p)
	c.validateDestinations(&p)
	c.Renewal.validate(&p)
	c.Webhook.validate(&p)
	return p
}

func (a *ACME) validate(p *problems) {
	if a.Endpoint != "" { // an empty one is reported by validateCAs
		if err := checkCAEndpoint(a.Endpoint); err != nil {
			p.add("acme.endpoint", "%v", err)
		}
	}
	for i, contact := range a.Contacts {
		if err := checkEmail(contact); err != nil {
			p.add(fmt.Sprintf("acme.contacts[%d]", i), "%v", err)
		}
	}
	if a.CABundle != "" {
		if err := checkCABundle(a.CABundle); err != nil {
			p.add("acme.caBundle", "%v", err)
		}
	}
}

func (d *DNS) validate(p *problems) {
	for i, r := range d.Resolvers {
		if err := checkServer(r); err != nil {
			p.add(fmt.Sprintf("dns.resolvers[%d]", i), "%v", err)
		}
	}
	if d.PropagationTimeout <= 0 {
		p.add("dns.propagationTimeout", "must be positive")
	}
	names := map[string]int{}
	for i := range d.Providers {
		prov := &d.Providers[i]
		path := fmt.Sprintf("dns.providers[%d]", i)
		if prov.Name == "" {
			p.add(path+".name", "required")
		} else if first, ok := names[prov.Name]; ok {
			p.add(path+".name", "%q is already the name of dns.providers[%d]", prov.Name, first)
		} else {
			names[prov.Name] = i
		}
		prov.validate(p, path)
	}
}

func (prov *DNSProvider) validate(p *problems, path string) {
	for i, z := range prov.Zones {
		if err := checkDNSName(z); err != nil {
			p.add(fmt.Sprintf("%s.zones[%d]", path, i), "%v", err)
		}
	}
	if prov.TTL < 1 || prov.TTL > maxTTL {
		p.add(path+".ttl", "must be between 1 and %d", maxTTL)
	}
	if prov.PropagationTimeout < 0 {
		p.add(path+".propagationTimeout", "must not be negative")
	}
	newBlock, known := providerTypes[prov.Type]
	switch {
	case prov.Type == "":
		p.add(path+".type", "required, one of: %s", strings.Join(ProviderTypes, ", "))
		return
	case !known:
		p.add(path+".type", "%q is not supported, use one of: %s", prov.Type, strings.Join(ProviderTypes, ", "))
		return
	}
	if len(prov.Zones) == 0 && slices.Contains(unlistedTypes, prov.Type) && prov.Type != ProviderRFC2136 {
		p.add(path+".zones", "required: a provider of type %s cannot list its zones", prov.Type)
	}
	block := prov.Block()
	if block == nil {
		p.add(path, "the %s settings are missing", prov.Type)
	} else if reflect.TypeOf(block) != reflect.TypeOf(newBlock()) {
		p.add(path, "the settings are not those of type %s", prov.Type)
	} else {
		block.validate(p, path)
	}
	for other, set := range map[string]bool{
		ProviderRFC2136:   prov.RFC2136 != nil,
		ProviderCustomDNS: prov.CustomDNS != nil,
	} {
		if set && other != prov.Type {
			p.add(path, "%s settings are set on a provider of type %s", other, prov.Type)
		}
	}
	if prov.Settings != nil && (prov.Type == ProviderRFC2136 || prov.Type == ProviderCustomDNS) {
		p.add(path, "settings of another type are set on a provider of type %s", prov.Type)
	}
}

func (r *RFC2136) validate(p *problems, path string) {
	if r.Nameserver == "" {
		p.add(path+".nameserver", "required")
	} else if err := checkServer(r.Nameserver); err != nil {
		p.add(path+".nameserver", "%v", err)
	}
	if r.TSIGKeyName == "" {
		p.add(path+".tsigKeyName", "required")
	} else if err := checkDNSName(r.TSIGKeyName); err != nil {
		p.add(path+".tsigKeyName", "%v", err)
	}
	if !slices.Contains(TSIGAlgorithms, strings.ToLower(strings.TrimSuffix(r.TSIGAlgorithm, "."))) {
		p.add(path+".tsigAlgorithm", "%q is not supported, use one of: %s", r.TSIGAlgorithm, strings.Join(TSIGAlgorithms, ", "))
	}
	if r.TSIGSecret == "" {
		p.add(path+".tsigSecret", "required")
	} else if _, err := base64.StdEncoding.DecodeString(r.TSIGSecret.Reveal()); err != nil {
		p.add(path+".tsigSecret", "must be base64")
	}
}

func (cd *CustomDNS) validate(p *problems, path string) {
	if cd.Endpoint == "" {
		p.add(path+".endpoint", "required")
	} else if err := checkHTTPURL(cd.Endpoint, true); err != nil {
		p.add(path+".endpoint", "%v", err)
	}
	if cd.APIKey == "" {
		p.add(path+".apiKey", "required")
	}
	if cd.APIKeyHeaderName == "" {
		p.add(path+".apiKeyHeaderName", "required")
	} else if !isToken(cd.APIKeyHeaderName) {
		p.add(path+".apiKeyHeaderName", "%q is not a valid HTTP header name", cd.APIKeyHeaderName)
	}
}

func (a *Auth) validate(p *problems) {
	names := map[string]int{}
	hashes := map[[32]byte]int{}
	for i, k := range a.APIKeys {
		path := fmt.Sprintf("auth.apiKeys[%d]", i)
		if k.Name == "" {
			p.add(path+".name", "required")
		} else if first, ok := names[k.Name]; ok {
			p.add(path+".name", "%q is already the name of auth.apiKeys[%d]", k.Name, first)
		} else {
			names[k.Name] = i
		}
		switch {
		case k.Key == "":
			p.add(path+".key", "required")
		case len(k.Key.Reveal()) < minAPIKeyLength:
			p.add(path+".key", "must be at least %d characters", minAPIKeyLength)
		default:
			h := auth.HashKey(k.Key.Reveal())
			if first, ok := hashes[h]; ok {
				p.add(path+".key", "the same key as auth.apiKeys[%d]", first)
			} else {
				hashes[h] = i
			}
		}
		for j, r := range k.Roles {
			if !auth.ValidRole(r) {
				p.add(fmt.Sprintf("%s.roles[%d]", path, j), "%q is not a role, use one of: %s", r, roleList())
			}
		}
	}
}

func roleList() string {
	names := make([]string, len(auth.Roles))
	for i, r := range auth.Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

func (j *Jobs) validate(p *problems) {
	if j.Workers <= 0 {
		p.add("jobs.workers", "must be positive")
	}
	if j.Timeout <= 0 {
		p.add("jobs.timeout", "must be positive")
	}
	if j.RescueAfter < minRescueAfter {
		p.add("jobs.rescueAfter", "must be at least %s", minRescueAfter)
	}
	if j.ShutdownGrace <= 0 {
		p.add("jobs.shutdownGrace", "must be positive")
	}
}

func (l *Log) validate(p *problems) {
	if !slices.Contains(LogLevels, l.Level) {
		p.add("log.level", "%q is not a level, use one of: %s", l.Level, strings.Join(LogLevels, ", "))
	}
	if !slices.Contains(LogFormats, l.Format) {
		p.add("log.format", "%q is not a format, use one of: %s", l.Format, strings.Join(LogFormats, ", "))
	}
}

// checkHostPort checks a host:port address with a port from 0 to 65535 and
// an empty host (every interface) allowed, as for a listening address.
func checkHostPort(addr string) error { return checkAddr(addr, false) }

// checkServer checks the host:port of a server to connect to: the host is
// required and the port is from 1 to 65535.
func checkServer(addr string) error { return checkAddr(addr, true) }

func checkAddr(addr string, server bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port[0] == '+' || (server && n == 0) {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	if server && host == "" || strings.ContainsAny(host, " /?#@") {
		return fmt.Errorf("%q has an invalid host", addr)
	}
	return nil
}

// checkHTTPURL checks an absolute http or https URL with a host; with
// wantSlash its path must end in a slash.
func checkHTTPURL(s string, wantSlash bool) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	}
	if wantSlash && !strings.HasSuffix(u.Path, "/") {
		return fmt.Errorf("%q must end in /", s)
	}
	return nil
}

// checkACMEEndpoint checks an absolute https URL; plain http is allowed only
// on the loopback interface, for test CAs.
func checkACMEEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute https URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		switch u.Hostname() {
		case "127.0.0.1", "localhost", "::1":
			return nil
		}
		return fmt.Errorf("%q must use https (http only for 127.0.0.1 or localhost)", s)
	}
	return fmt.Errorf("%q is not an absolute https URL", s)
}

// checkEmail checks a bare e-mail address, optionally with mailto:.
func checkEmail(contact string) error {
	addr := strings.TrimPrefix(contact, "mailto:")
	parsed, err := mail.ParseAddress(addr)
	if err != nil || parsed.Address != addr || parsed.Name != "" {
		return fmt.Errorf("%q is not an e-mail address", contact)
	}
	_, domain, ok := strings.Cut(addr, "@")
	if !ok || checkDNSName(domain) != nil {
		return fmt.Errorf("%q is not an e-mail address", contact)
	}
	return nil
}

// checkCABundle checks that file is readable PEM with at least one
// certificate.
func checkCABundle(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading CA bundle: %w", err)
	}
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("parsing certificate %d of %s: %w", n+1, file, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM certificate", file)
	}
	return nil
}

// checkDNSName checks a DNS host or zone name (letters, digits and hyphens,
// plus underscores for service labels), with or without a trailing dot.
func checkDNSName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > 253 {
		return fmt.Errorf("%q is not a valid DNS name", name)
	}
	for label := range strings.SplitSeq(n, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a valid DNS name", name)
		}
		for _, ch := range []byte(label) {
			if !isLetterDigit(ch) && ch != '-' && ch != '_' {
				return fmt.Errorf("%q is not a valid DNS name", name)
			}
		}
	}
	return nil
}

func isLetterDigit(ch byte) bool {
	return 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9'
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the
// syntax of a header name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, ch := range []byte(s) {
		if !isLetterDigit(ch) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(ch)) {
			return false
		}
	}
	return true
}
