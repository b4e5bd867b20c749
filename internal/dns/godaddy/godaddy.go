// Package godaddy holds a DNS provider for GoDaddy's Domains API v1
// (https://developer.godaddy.com/doc/endpoint/domains):
//
//	GET    /v1/domains?statuses=ACTIVE&limit=&marker=       the domains, a page after marker
//	GET    /v1/domains/{domain}                             one domain, with nameServers
//	GET    /v1/domains/{domain}/records/TXT/{name}          the TXT records at a name
//	PUT    /v1/domains/{domain}/records/TXT/{name}          [{"data","ttl"}] replaces them
//	DELETE /v1/domains/{domain}/records/TXT/{name}          removes them
//
// with "Authorization: sso-key <key>:<secret>"; {name} is relative to the
// domain ("@" at the apex). GoDaddy's smallest TTL is 600 seconds.
//
// It is a native client rather than lego's providers/dns/godaddy, which
// finds the zone by SOA queries through a process-wide resolver and follows
// CNAMEs unless the process environment says not to; certkeeper does both
// itself, and lists domains, which lego does not.
package godaddy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is GoDaddy's production API.
const DefaultEndpoint = "https://api.godaddy.com"

// minTTL is GoDaddy's smallest TTL; pageSize the domains asked per page.
const (
	minTTL   = 600
	pageSize = 500
)

// Config is what a Provider needs.
type Config struct {
	APIKey    string
	APISecret secret.String
	// Endpoint replaces DefaultEndpoint (https://api.ote-godaddy.com is
	// GoDaddy's test environment).
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one GoDaddy account. It is safe for concurrent use.
type Provider struct {
	api *rest.Client
	ttl int
	// mu serializes read-modify-write of a name's records: PUT replaces
	// them all.
	mu sync.Mutex
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
		return nil, fmt.Errorf("configuring GoDaddy: endpoint: %w", err)
	}
	if cfg.APIKey == "" || cfg.APISecret == "" {
		return nil, errors.New("configuring GoDaddy: apiKey and apiSecret are required")
	}
	key, sec := cfg.APIKey, cfg.APISecret
	return &Provider{
		api: &rest.Client{BaseURL: base.JoinPath("v1"), HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: func(r *http.Request, _ []byte) error {
				r.Header.Set("Authorization", "sso-key "+key+":"+sec.Reveal())
				return nil
			}},
		ttl: max(cfg.TTL, minTTL),
	}, nil
}

// errorMessage renders {"code":"UNABLE_TO_AUTHENTICATE","message":"…"}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Code == "" {
		return ""
	}
	return e.Code + ": " + e.Message
}

type record struct {
	Data string `json:"data"`
	TTL  int    `json:"ttl"`
}

// Zones implements dns.ZoneLister: the active domains, page after page.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var names []string
	marker := ""
	for {
		q := url.Values{"statuses": {"ACTIVE"}, "limit": {strconv.Itoa(pageSize)}}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page []struct {
			Domain string `json:"domain"`
		}
		if err := p.api.Do(ctx, http.MethodGet, "/domains", q, nil, &page); err != nil {
			return nil, fmt.Errorf("listing domains: %w", err)
		}
		for _, d := range page {
			names = append(names, d.Domain)
		}
		if len(page) < pageSize {
			return names, nil
		}
		marker = page[len(page)-1].Domain
	}
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	var d struct {
		NameServers []string `json:"nameServers"`
	}
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("domains", normalize(zone)), nil, nil, &d); err != nil {
		return nil, fmt.Errorf("reading domain %s: %w", zone, err)
	}
	return d.NameServers, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func recordsPath(zone, fqdn string) string {
	zone, name := normalize(zone), normalize(fqdn)
	rel := "@"
	if name != zone {
		rel = strings.TrimSuffix(name, "."+zone)
	}
	return rest.Path("domains", zone, "records", "TXT", rel)
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

func (p *Provider) change(ctx context.Context, zone, fqdn string, edit func([]string) []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	path := recordsPath(zone, fqdn)
	var recs []record
	if err := p.api.Do(ctx, http.MethodGet, path, nil, nil, &recs); err != nil {
		return fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	var cur []string
	for _, r := range recs {
		cur = append(cur, r.Data)
	}
	before := slices.Clone(cur)
	next := edit(cur)
	switch {
	case slices.Equal(before, next):
		return nil
	case len(next) == 0:
		err := p.api.Do(ctx, http.MethodDelete, path, nil, nil, nil)
		if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("deleting TXT %s: %w", fqdn, err)
		}
		return nil
	}
	out := make([]record, len(next))
	for i, v := range next {
		out[i] = record{Data: v, TTL: p.ttl}
	}
	if err := p.api.Do(ctx, http.MethodPut, path, nil, out, nil); err != nil {
		return fmt.Errorf("writing TXT %s: %w", fqdn, err)
	}
	return nil
}
