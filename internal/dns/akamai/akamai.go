// Package akamai holds a DNS provider for Akamai Edge DNS (Configuration
// API v2, https://techdocs.akamai.com/edge-dns/reference/edge-dns-api):
//
//	GET    /config-dns/v2/zones?types=PRIMARY&page=&pageSize=   {"metadata":{"totalElements"},"zones":[{"zone"}]}
//	GET    /config-dns/v2/zones/{zone}/names/{name}/types/TXT   {"name","type","ttl","rdata":[…]}, 404 when none
//	POST   /config-dns/v2/zones/{zone}/names/{name}/types/TXT   creates the record set
//	PUT    /config-dns/v2/zones/{zone}/names/{name}/types/TXT   replaces it
//	DELETE /config-dns/v2/zones/{zone}/names/{name}/types/TXT   removes it
//
// Requests are signed with EdgeGrid (EG1-HMAC-SHA256, see Sign); errors are
// problem documents {"type","title","status","detail"}. {name} is the full
// name; TXT rdata are quoted character-strings.
//
// It is a native client: lego's providers/dns/edgedns needs Akamai's
// EdgeGrid SDK, which is not among the modules certkeeper builds with.
package akamai

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// pageSize is the zones asked per page; maxBody how much of a POST body
// EdgeGrid hashes.
const (
	pageSize = 500
	maxBody  = 131072
)

// Config is what a Provider needs: the EdgeGrid credentials of an API
// client with READ-WRITE access to Edge DNS.
type Config struct {
	// Host is the client's API host (akab-….luna.akamaiapis.net).
	Host         string
	ClientToken  string
	ClientSecret secret.String
	AccessToken  secret.String
	// AccountSwitchKey acts for another account.
	AccountSwitchKey string
	// Endpoint replaces https://{Host}.
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
	// Now replaces time.Now in signatures (tests).
	Now func() time.Time
}

// Provider is one Edge DNS API client. It is safe for concurrent use.
type Provider struct {
	api       *rest.Client
	switchKey string
	ttl       int
	// mu serializes read-modify-write of a record set.
	mu sync.Mutex
}

var (
	_ dns.Provider   = (*Provider)(nil)
	_ dns.ZoneLister = (*Provider)(nil)
)

// New checks cfg and returns a Provider. It does not contact the API.
func New(cfg Config) (*Provider, error) {
	endpoint := cfg.Endpoint
	if endpoint == "" {
		if cfg.Host == "" {
			return nil, errors.New("configuring Akamai: host is required")
		}
		endpoint = "https://" + strings.TrimPrefix(strings.TrimSuffix(cfg.Host, "/"), "https://")
	}
	base, err := rest.ParseBase(endpoint)
	if err != nil {
		return nil, fmt.Errorf("configuring Akamai: endpoint: %w", err)
	}
	if cfg.ClientToken == "" || cfg.ClientSecret == "" || cfg.AccessToken == "" {
		return nil, errors.New("configuring Akamai: clientToken, clientSecret and accessToken are required")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	cred := Credentials{ClientToken: cfg.ClientToken, ClientSecret: cfg.ClientSecret, AccessToken: cfg.AccessToken}
	return &Provider{
		api: &rest.Client{BaseURL: base.JoinPath("config-dns", "v2"), HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: func(r *http.Request, body []byte) error {
				nonce := make([]byte, 16)
				rand.Read(nonce)
				r.Header.Set("Authorization", Sign(cred, r.Method, r.URL, body, now().UTC(), hex.EncodeToString(nonce)))
				return nil
			}},
		switchKey: cfg.AccountSwitchKey,
		ttl:       max(cfg.TTL, 30),
	}, nil
}

// Credentials are an EdgeGrid API client's.
type Credentials struct {
	ClientToken  string
	ClientSecret secret.String
	AccessToken  secret.String
}

// Sign returns the EdgeGrid Authorization header of a request:
//
//	EG1-HMAC-SHA256 client_token=…;access_token=…;timestamp=20060102T15:04:05+0000;nonce=…;signature=…
//
// where signature is base64(HMAC-SHA256(signingKey, data)), signingKey is
// base64(HMAC-SHA256(clientSecret, timestamp)) and data joins with tabs
// the method, scheme, host, path and query, the canonical headers (none),
// the base64 SHA-256 of a POST body (up to 128 KiB; empty otherwise) and
// the header up to and including "nonce=…;".
func Sign(c Credentials, method string, u *url.URL, body []byte, t time.Time, nonce string) string {
	ts := t.UTC().Format("20060102T15:04:05+0000")
	head := "EG1-HMAC-SHA256 client_token=" + c.ClientToken + ";access_token=" + c.AccessToken.Reveal() +
		";timestamp=" + ts + ";nonce=" + nonce + ";"
	contentHash := ""
	if method == http.MethodPost && len(body) > 0 {
		sum := sha256.Sum256(body[:min(len(body), maxBody)])
		contentHash = base64.StdEncoding.EncodeToString(sum[:])
	}
	rel := u.EscapedPath()
	if u.RawQuery != "" {
		rel += "?" + u.RawQuery
	}
	data := strings.Join([]string{method, u.Scheme, u.Host, rel, "", contentHash, head}, "\t")
	key := hmacB64([]byte(c.ClientSecret.Reveal()), ts)
	return head + "signature=" + hmacB64([]byte(key), data)
}

func hmacB64(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// errorMessage renders a problem document.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &e) != nil || (e.Title == "" && e.Detail == "") {
		return ""
	}
	if e.Detail == "" {
		return e.Title
	}
	return e.Title + ": " + e.Detail
}

func (p *Provider) query(q url.Values) url.Values {
	if p.switchKey != "" {
		if q == nil {
			q = url.Values{}
		}
		q.Set("accountSwitchKey", p.switchKey)
	}
	return q
}

// Zones implements dns.ZoneLister: the primary and secondary zones the
// client may see.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var names []string
	for page := 1; ; page++ {
		var out struct {
			Metadata struct {
				TotalElements int `json:"totalElements"`
			} `json:"metadata"`
			Zones []struct {
				Zone string `json:"zone"`
			} `json:"zones"`
		}
		q := p.query(url.Values{"types": {"PRIMARY,SECONDARY"}, "page": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(pageSize)}})
		if err := p.api.Do(ctx, http.MethodGet, "/zones", q, nil, &out); err != nil {
			return nil, fmt.Errorf("listing zones: %w", err)
		}
		for _, z := range out.Zones {
			names = append(names, z.Zone)
		}
		if len(out.Zones) == 0 || len(names) >= out.Metadata.TotalElements {
			return names, nil
		}
	}
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

type recordSet struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	TTL   int      `json:"ttl"`
	Rdata []string `json:"rdata"`
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	return p.change(ctx, zone, fqdn, func(cur []string) []string {
		for _, v := range values {
			if !slices.Contains(cur, v) {
				cur = append(cur, v)
			}
		}
		return cur
	})
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	return p.change(ctx, zone, fqdn, func(cur []string) []string {
		return slices.DeleteFunc(cur, func(v string) bool { return slices.Contains(values, v) })
	})
}

func quote(v string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `"`, `\"`) + `"`
}

func (p *Provider) change(ctx context.Context, zone, fqdn string, edit func([]string) []string) error {
	name := normalize(fqdn)
	path := rest.Path("zones", normalize(zone), "names", name, "types", "TXT")
	p.mu.Lock()
	defer p.mu.Unlock()
	var rs recordSet
	exists := true
	if err := p.api.Do(ctx, http.MethodGet, path, p.query(nil), nil, &rs); err != nil {
		if !rest.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("reading TXT %s: %w", fqdn, err)
		}
		exists = false
	}
	var cur []string
	for _, r := range rs.Rdata {
		cur = append(cur, rest.Unquote(r))
	}
	before := slices.Clone(cur)
	next := edit(cur)
	switch {
	case slices.Equal(before, next):
		return nil
	case len(next) == 0:
		err := p.api.Do(ctx, http.MethodDelete, path, p.query(nil), nil, nil)
		if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("deleting TXT %s: %w", fqdn, err)
		}
		return nil
	}
	out := recordSet{Name: name, Type: "TXT", TTL: p.ttl}
	for _, v := range next {
		out.Rdata = append(out.Rdata, quote(v))
	}
	method := http.MethodPut
	if !exists {
		method = http.MethodPost
	}
	if err := p.api.Do(ctx, method, path, p.query(nil), out, nil); err != nil {
		return fmt.Errorf("writing TXT %s: %w", fqdn, err)
	}
	return nil
}
