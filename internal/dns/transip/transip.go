// Package transip holds a DNS provider for TransIP's REST API v6
// (https://api.transip.nl/rest/docs.html):
//
//	POST   /v6/auth                    {"login","nonce","read_only","expiration_time","label","global_key"}
//	                                   signed in the Signature header, answers {"token"}
//	GET    /v6/domains                 {"domains":[{"name"}]}
//	GET    /v6/domains/{domain}/nameservers   {"nameservers":[{"hostname"}]}
//	GET    /v6/domains/{domain}/dns    {"dnsEntries":[{"name","expire","type","content"}]}
//	POST   /v6/domains/{domain}/dns    {"dnsEntry":{…}} adds one entry
//	DELETE /v6/domains/{domain}/dns    {"dnsEntry":{…}} removes one entry
//
// The Signature header is the base64 of an RSA PKCS #1 v1.5 signature with
// SHA-512 over the exact request body, made with the key pair's private
// key; later requests carry "Authorization: Bearer <token>". Entry names are
// relative to the domain ("@" at the apex). Errors are {"error":"…"}.
package transip

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is TransIP's production API.
const DefaultEndpoint = "https://api.transip.nl"

// minTTL is TransIP's smallest expire; tokenLife what is asked for a token
// and tokenUse how long one is used.
const (
	minTTL    = 60
	tokenLife = "30 minutes"
	tokenUse  = 25 * time.Minute
)

// Config is what a Provider needs.
type Config struct {
	// Login is the TransIP account name.
	Login string
	// PrivateKey is the PEM private key of an API key pair (PKCS #8 or
	// PKCS #1).
	PrivateKey secret.String
	// Endpoint replaces DefaultEndpoint.
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
	// Now replaces time.Now for token expiry (tests).
	Now func() time.Time
}

// Provider is one TransIP account. It is safe for concurrent use.
type Provider struct {
	api, auth *rest.Client
	login     string
	key       *rsa.PrivateKey
	ttl       int
	now       func() time.Time

	tokenMu sync.Mutex
	token   secret.String
	expires time.Time
}

var (
	_ dns.Provider           = (*Provider)(nil)
	_ dns.ZoneLister         = (*Provider)(nil)
	_ dns.NameServerReporter = (*Provider)(nil)
)

// New checks cfg and returns a Provider. It does not contact the API.
func New(cfg Config) (*Provider, error) {
	base, err := rest.ParseBase(cmp.Or(cfg.Endpoint, DefaultEndpoint))
	if err != nil {
		return nil, fmt.Errorf("configuring TransIP: endpoint: %w", err)
	}
	if cfg.Login == "" || cfg.PrivateKey == "" {
		return nil, errors.New("configuring TransIP: login and privateKey are required")
	}
	key, err := parseKey(cfg.PrivateKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("configuring TransIP: privateKey: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	p := &Provider{login: cfg.Login, key: key, ttl: max(cfg.TTL, minTTL), now: now}
	v6 := base.JoinPath("v6")
	p.auth = &rest.Client{BaseURL: v6, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
		Authorize: func(r *http.Request, body []byte) error {
			sig, err := Sign(key, body)
			if err != nil {
				return err
			}
			r.Header.Set("Signature", sig)
			return nil
		}}
	p.api = &rest.Client{BaseURL: v6, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
		Authorize: func(r *http.Request, _ []byte) error {
			tok, err := p.bearer(r.Context())
			if err != nil {
				return err
			}
			r.Header.Set("Authorization", "Bearer "+tok.Reveal())
			return nil
		}}
	return p, nil
}

func parseKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS #8 or PKCS #1 private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA private key")
	}
	return rk, nil
}

// Sign returns TransIP's Signature header for body: base64 of an RSA
// PKCS #1 v1.5 SHA-512 signature.
func Sign(key *rsa.PrivateKey, body []byte) (string, error) {
	sum := sha512.Sum512(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA512, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// errorMessage renders {"error":"…"}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error
}

// bearer returns a token, asking for a new one when none is fresh.
func (p *Provider) bearer(ctx context.Context) (secret.String, error) {
	p.tokenMu.Lock()
	defer p.tokenMu.Unlock()
	if p.token != "" && p.now().Before(p.expires) {
		return p.token, nil
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	in := map[string]any{
		"login": p.login, "nonce": hex.EncodeToString(nonce), "read_only": false,
		"expiration_time": tokenLife, "label": "certkeeper " + hex.EncodeToString(nonce[:4]), "global_key": true,
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := p.auth.Do(ctx, http.MethodPost, "/auth", nil, in, &out); err != nil {
		return "", fmt.Errorf("requesting a token: %w", err)
	}
	if out.Token == "" {
		return "", errors.New("requesting a token: empty token")
	}
	p.token, p.expires = secret.String(out.Token), p.now().Add(tokenUse)
	return p.token, nil
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var out struct {
		Domains []struct {
			Name string `json:"name"`
		} `json:"domains"`
	}
	if err := p.api.Do(ctx, http.MethodGet, "/domains", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("listing domains: %w", err)
	}
	names := make([]string, 0, len(out.Domains))
	for _, d := range out.Domains {
		names = append(names, d.Name)
	}
	return names, nil
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	var out struct {
		Nameservers []struct {
			Hostname string `json:"hostname"`
		} `json:"nameservers"`
	}
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("domains", normalize(zone), "nameservers"), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("reading name servers of %s: %w", zone, err)
	}
	var ns []string
	for _, n := range out.Nameservers {
		ns = append(ns, n.Hostname)
	}
	return ns, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// entry is one DNS entry of a domain.
type entry struct {
	Name    string `json:"name"`
	Expire  int    `json:"expire"`
	Type    string `json:"type"`
	Content string `json:"content"`
}

func relative(zone, fqdn string) string {
	zone, name := normalize(zone), normalize(fqdn)
	if name == zone {
		return "@"
	}
	return strings.TrimSuffix(name, "."+zone)
}

// txt returns the TXT entries at name.
func (p *Provider) txt(ctx context.Context, zone, name string) ([]entry, error) {
	var out struct {
		DNSEntries []entry `json:"dnsEntries"`
	}
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("domains", normalize(zone), "dns"), nil, nil, &out); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out.DNSEntries, func(e entry) bool { return e.Type != "TXT" || e.Name != name }), nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	name := relative(zone, fqdn)
	cur, err := p.txt(ctx, zone, name)
	if err != nil {
		return fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	for _, v := range values {
		if slices.ContainsFunc(cur, func(e entry) bool { return e.Content == v }) {
			continue
		}
		e := entry{Name: name, Expire: p.ttl, Type: "TXT", Content: v}
		if err := p.api.Do(ctx, http.MethodPost, rest.Path("domains", normalize(zone), "dns"), nil, map[string]entry{"dnsEntry": e}, nil); err != nil {
			return fmt.Errorf("adding TXT %s: %w", fqdn, err)
		}
		cur = append(cur, e)
	}
	return nil
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	cur, err := p.txt(ctx, zone, relative(zone, fqdn))
	if err != nil {
		return fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	for _, e := range cur {
		if !slices.Contains(values, e.Content) {
			continue
		}
		err := p.api.Do(ctx, http.MethodDelete, rest.Path("domains", normalize(zone), "dns"), nil, map[string]entry{"dnsEntry": e}, nil)
		if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("deleting TXT %s: %w", fqdn, err)
		}
	}
	return nil
}
