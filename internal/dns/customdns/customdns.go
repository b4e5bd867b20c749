// Package customdns holds a DNS provider for HTTP APIs that follow Key Vault
// Acmebot's "Custom DNS" contract, so DNS backends written for Acmebot work
// unchanged:
//
//	GET    {endpoint}zones                           → [{"id","name","nameServers"}]
//	PUT    {endpoint}zones/{zoneId}/records/{name}   ← {"type":"TXT","ttl":60,"values":[…]}
//	DELETE {endpoint}zones/{zoneId}/records/{name}
//
// with the API key in a header (X-Api-Key by default). The record name is
// the fully qualified name without a trailing dot
// (_acme-challenge.www.example.com), as Acmebot builds it from the relative
// name and the zone name. Source: shibayan/keyvault-acmebot,
// KeyVault.Acmebot/Providers/CustomDnsProvider.cs and DnsZone.cs.
//
// PUT replaces the whole RRset and DELETE removes it, so callers pass every
// value of the RRset to Present and remove the RRset as a whole; the dns
// package's Solver does so.
package customdns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Defaults for Config fields left zero.
const (
	DefaultAPIKeyHeaderName = "X-Api-Key"
	DefaultTTL              = 60
	DefaultTimeout          = 30 * time.Second
)

// zoneCacheTTL is how long the zone list (for zone ids) is reused.
const zoneCacheTTL = time.Minute

// maxErrorBody bounds how much of an error answer is quoted in an error.
const maxErrorBody = 512

// Config is what a Provider needs.
type Config struct {
	// Endpoint is the base URL of the API; a missing trailing slash is added.
	Endpoint         string
	APIKey           secret.String
	APIKeyHeaderName string
	// TTL of the records written; default 60.
	TTL int
	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
}

// Provider talks to one Custom DNS endpoint. It is safe for concurrent use.
type Provider struct {
	base    string // endpoint without query or fragment, ending in "/"
	display string // base without user information, for errors
	apiKey  secret.String
	header  string
	ttl     int
	client  *http.Client

	mu          sync.Mutex
	zones       []zone
	zonesExpire time.Time
}

var (
	_ dns.Provider           = (*Provider)(nil)
	_ dns.ZoneLister         = (*Provider)(nil)
	_ dns.NameServerReporter = (*Provider)(nil)
)

// zone is one element of GET zones.
type zone struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	NameServers []string `json:"nameServers"`
}

// recordBody is the body of PUT zones/{zoneId}/records/{recordName}.
type recordBody struct {
	Type   string   `json:"type"`
	TTL    int      `json:"ttl"`
	Values []string `json:"values"`
}

// New checks cfg and returns a Provider. It does not contact the API.
func New(cfg Config) (*Provider, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("configuring Custom DNS provider: endpoint is required")
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("configuring Custom DNS provider: endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	// Acmebot resolves "zones…" against the endpoint, which drops its query.
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	shown := *u
	shown.User = nil
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("configuring Custom DNS provider: ttl %d is negative", cfg.TTL)
	}
	p := &Provider{base: u.String(), display: shown.String(), apiKey: cfg.APIKey, header: cfg.APIKeyHeaderName, ttl: cfg.TTL, client: cfg.HTTPClient}
	if p.header == "" {
		p.header = DefaultAPIKeyHeaderName
	}
	if p.ttl == 0 {
		p.ttl = DefaultTTL
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: DefaultTimeout}
	}
	return p, nil
}

// Zones returns the names of the zones the API lists.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	zones, err := p.listZones(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(zones))
	for _, z := range zones {
		names = append(names, z.Name)
	}
	return names, nil
}

func (p *Provider) listZones(ctx context.Context) ([]zone, error) {
	var zones []zone
	body, err := p.do(ctx, http.MethodGet, "zones", nil)
	if err != nil {
		return nil, fmt.Errorf("listing zones: %w", err)
	}
	if err := json.Unmarshal(body, &zones); err != nil {
		return nil, fmt.Errorf("listing zones: decoding answer: %w", err)
	}
	for i := range zones {
		zones[i].Name = strings.TrimSuffix(strings.ToLower(zones[i].Name), ".")
	}
	p.mu.Lock()
	p.zones, p.zonesExpire = zones, time.Now().Add(zoneCacheTTL)
	p.mu.Unlock()
	return zones, nil
}

// NameServers implements dns.NameServerReporter with the nameServers of
// the zone in the API's zone list (empty when the API gives none).
func (p *Provider) NameServers(ctx context.Context, name string) ([]string, error) {
	zones, err := p.listZones(ctx)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, z := range zones {
		if z.Name == name {
			return z.NameServers, nil
		}
	}
	return nil, fmt.Errorf("zone %q is not in the API's zone list", name)
}

// zoneID returns the id of the zone called name, listing the zones when
// the cached list is old or lacks it.
func (p *Provider) zoneID(ctx context.Context, name string) (string, error) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	p.mu.Lock()
	zones, fresh := p.zones, time.Now().Before(p.zonesExpire)
	p.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if attempt == 1 || !fresh {
			var err error
			if zones, err = p.listZones(ctx); err != nil {
				return "", err
			}
		}
		for _, z := range zones {
			if z.Name == name {
				return z.ID, nil
			}
		}
		if !fresh {
			break
		}
	}
	return "", fmt.Errorf("zone %q is not in the API's zone list", name)
}

// Present replaces the TXT RRset at fqdn with values (PUT).
func (p *Provider) Present(ctx context.Context, zoneName, fqdn string, values []string) error {
	id, err := p.zoneID(ctx, zoneName)
	if err != nil {
		return fmt.Errorf("presenting TXT %s: %w", fqdn, err)
	}
	body, err := json.Marshal(recordBody{Type: "TXT", TTL: p.ttl, Values: values})
	if err != nil {
		return fmt.Errorf("presenting TXT %s: %w", fqdn, err)
	}
	if _, err := p.do(ctx, http.MethodPut, recordPath(id, fqdn), body); err != nil {
		return fmt.Errorf("presenting TXT %s: %w", fqdn, err)
	}
	return nil
}

// CleanUp deletes the TXT RRset at fqdn (DELETE); the contract has no way
// to remove single values. A record that is already gone (404) is not an
// error.
func (p *Provider) CleanUp(ctx context.Context, zoneName, fqdn string, _ []string) error {
	id, err := p.zoneID(ctx, zoneName)
	if err != nil {
		return fmt.Errorf("removing TXT %s: %w", fqdn, err)
	}
	_, err = p.do(ctx, http.MethodDelete, recordPath(id, fqdn), nil)
	var se *StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing TXT %s: %w", fqdn, err)
	}
	return nil
}

func recordPath(zoneID, fqdn string) string {
	return "zones/" + url.PathEscape(zoneID) + "/records/" + url.PathEscape(strings.TrimSuffix(strings.ToLower(fqdn), "."))
}

// StatusError is a non-2xx answer of the API.
type StatusError struct {
	Method     string
	URL        string
	StatusCode int
	// Body is the answer's text, trimmed and cut to 512 bytes.
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		msg += " " + t
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// do sends one request and returns the body of a 2xx answer, or a
// *StatusError.
func (p *Provider) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	shown := p.display + path
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, reader)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.apiKey != "" {
		req.Header.Set(p.header, p.apiKey.Reveal())
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL may hold user information
		}
		return nil, fmt.Errorf("%s %s: %w", method, shown, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 10<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, shown, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		text := strings.TrimSpace(string(data))
		if len(text) > maxErrorBody {
			text = text[:maxErrorBody] + "…"
		}
		return nil, &StatusError{Method: method, URL: shown, StatusCode: resp.StatusCode, Body: text}
	}
	return data, nil
}
