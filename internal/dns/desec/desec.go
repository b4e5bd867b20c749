// Package desec holds a DNS provider for deSEC (https://desec.readthedocs.io/en/latest/dns/):
//
//	GET   /api/v1/domains/                                  the domains
//	GET   /api/v1/domains/{domain}/rrsets/{subname}/TXT/    one RRset ("@" at the apex)
//	PATCH /api/v1/domains/{domain}/rrsets/                  [{"subname","type","ttl","records"}]; no records deletes
//
// with "Authorization: Token <token>". deSEC's smallest TTL is the
// domain's minimum_ttl (3600 by default).
//
// lego's providers/dns/desec cannot be built here (its client module is
// refused by the module proxy), so this is a native client.
package desec

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is deSEC's API; minTTL its default minimum TTL.
const (
	DefaultEndpoint = "https://desec.io/api/v1"
	minTTL          = 3600
)

// NameServers serve every deSEC domain.
var NameServers = []string{"ns1.desec.io", "ns2.desec.org"}

// Config is what a Provider needs.
type Config struct {
	APIToken   secret.String
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one deSEC account. It is safe for concurrent use.
type Provider struct {
	api *rest.Client
	ttl int
	mu  sync.Mutex
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
		return nil, fmt.Errorf("configuring deSEC: endpoint: %w", err)
	}
	if cfg.APIToken == "" {
		return nil, errors.New("configuring deSEC: apiToken is required")
	}
	tok := cfg.APIToken
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: func(r *http.Request, _ []byte) error {
				r.Header.Set("Authorization", "Token "+tok.Reveal())
				return nil
			}},
		ttl: max(cfg.TTL, minTTL),
	}, nil
}

// errorMessage renders {"detail": "..."} or a validation object.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil && e.Detail != "" {
		return e.Detail
	}
	return ""
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var domains []struct {
		Name string `json:"name"`
	}
	if err := p.api.Do(ctx, http.MethodGet, "/domains/", nil, nil, &domains); err != nil {
		return nil, fmt.Errorf("listing domains: %w", err)
	}
	names := make([]string, len(domains))
	for i, d := range domains {
		names[i] = d.Name
	}
	return names, nil
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(context.Context, string) ([]string, error) { return NameServers, nil }

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func subname(zone, fqdn string) string {
	zone, name := normalize(zone), normalize(fqdn)
	if name == zone {
		return ""
	}
	return strings.TrimSuffix(name, "."+zone)
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

type rrset struct {
	Subname string   `json:"subname"`
	Type    string   `json:"type"`
	TTL     int      `json:"ttl,omitempty"`
	Records []string `json:"records"`
}

func (p *Provider) change(ctx context.Context, zone, fqdn string, edit func([]string) []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	zone, sub := normalize(zone), subname(zone, fqdn)
	pathSub := sub
	if pathSub == "" {
		pathSub = "@"
	}
	var set rrset
	err := p.api.Do(ctx, http.MethodGet, rest.Path("domains", zone, "rrsets", pathSub, "TXT")+"/", nil, nil, &set)
	if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	var cur []string
	for _, r := range set.Records {
		cur = append(cur, rest.Unquote(r))
	}
	before := slices.Clone(cur)
	next := edit(cur)
	if slices.Equal(before, next) {
		return nil
	}
	out := rrset{Subname: sub, Type: "TXT", TTL: p.ttl, Records: []string{}}
	for _, v := range next {
		out.Records = append(out.Records, rest.Quote(v))
	}
	if err := p.api.Do(ctx, http.MethodPatch, rest.Path("domains", zone, "rrsets")+"/", nil, []rrset{out}, nil); err != nil {
		return fmt.Errorf("writing TXT %s: %w", fqdn, err)
	}
	return nil
}
