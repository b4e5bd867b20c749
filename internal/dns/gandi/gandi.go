// Package gandi holds a DNS provider for Gandi's LiveDNS API v5
// (https://api.gandi.net/docs/livedns/):
//
//	GET    /v5/livedns/domains?page=&per_page=                 the domains
//	GET    /v5/livedns/domains/{fqdn}/nameservers
//	GET    /v5/livedns/domains/{fqdn}/records/{name}/TXT       one RRset
//	PUT    /v5/livedns/domains/{fqdn}/records/{name}/TXT       {"rrset_values","rrset_ttl"}
//	DELETE /v5/livedns/domains/{fqdn}/records/{name}/TXT
//
// with "Authorization: Bearer <personal access token>"; {name} is relative
// ("@" at the apex). Gandi's smallest TTL is 300 seconds.
//
// It is a native client rather than lego's providers/dns/gandiv5, which
// finds the zone by SOA queries through a process-wide resolver, follows
// CNAMEs unless the process environment says not to, and keeps its records
// in memory; certkeeper zones, follows and cleans up by itself.
package gandi

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

// DefaultEndpoint is LiveDNS's API; minTTL its smallest TTL.
const (
	DefaultEndpoint = "https://api.gandi.net/v5/livedns"
	minTTL          = 300
	perPage         = 100
)

// Config is what a Provider needs.
type Config struct {
	PersonalAccessToken secret.String
	Endpoint            string
	TTL                 int
	HTTPClient          *http.Client
}

// Provider is one Gandi organization. It is safe for concurrent use.
type Provider struct {
	api *rest.Client
	ttl int
	mu  sync.Mutex // PUT replaces the whole RRset
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
		return nil, fmt.Errorf("configuring Gandi: endpoint: %w", err)
	}
	if cfg.PersonalAccessToken == "" {
		return nil, errors.New("configuring Gandi: personalAccessToken is required")
	}
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: rest.Bearer(cfg.PersonalAccessToken)},
		ttl: max(cfg.TTL, minTTL),
	}, nil
}

// errorMessage renders {"code","message","cause"}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Message string `json:"message"`
		Cause   string `json:"cause"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	if e.Cause != "" {
		return e.Cause + ": " + e.Message
	}
	return e.Message
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var names []string
	for page := 1; ; page++ {
		var domains []struct {
			FQDN string `json:"fqdn"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(perPage)}}
		if err := p.api.Do(ctx, http.MethodGet, "/domains", q, nil, &domains); err != nil {
			return nil, fmt.Errorf("listing domains: %w", err)
		}
		for _, d := range domains {
			names = append(names, d.FQDN)
		}
		if len(domains) < perPage {
			return names, nil
		}
	}
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	var ns []string
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("domains", normalize(zone), "nameservers"), nil, nil, &ns); err != nil {
		return nil, fmt.Errorf("reading the name servers of %s: %w", zone, err)
	}
	return ns, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func recordPath(zone, fqdn string) string {
	zone, name := normalize(zone), normalize(fqdn)
	rel := "@"
	if name != zone {
		rel = strings.TrimSuffix(name, "."+zone)
	}
	return rest.Path("domains", zone, "records", rel, "TXT")
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
	path := recordPath(zone, fqdn)
	var set struct {
		Values []string `json:"rrset_values"`
	}
	err := p.api.Do(ctx, http.MethodGet, path, nil, nil, &set)
	if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	var cur []string
	for _, v := range set.Values {
		cur = append(cur, rest.Unquote(v))
	}
	before := slices.Clone(cur)
	next := edit(cur)
	switch {
	case slices.Equal(before, next):
		return nil
	case len(next) == 0:
		if err := p.api.Do(ctx, http.MethodDelete, path, nil, nil, nil); err != nil && !rest.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("deleting TXT %s: %w", fqdn, err)
		}
		return nil
	}
	body := struct {
		Values []string `json:"rrset_values"`
		TTL    int      `json:"rrset_ttl"`
	}{TTL: p.ttl}
	for _, v := range next {
		body.Values = append(body.Values, rest.Quote(v))
	}
	if err := p.api.Do(ctx, http.MethodPut, path, nil, body, nil); err != nil {
		return fmt.Errorf("writing TXT %s: %w", fqdn, err)
	}
	return nil
}
