// Package digitalocean holds a DNS provider for DigitalOcean's API v2
// (https://docs.digitalocean.com/reference/api/digitalocean/#tag/Domain-Records):
//
//	GET    /v2/domains?page=&per_page=                               the domains
//	GET    /v2/domains/{domain}/records?type=TXT&name={fqdn}&page=   TXT records at a name
//	POST   /v2/domains/{domain}/records    {"type":"TXT","name":"<relative>","data","ttl"}
//	DELETE /v2/domains/{domain}/records/{id}
//
// with "Authorization: Bearer <token>". Each value is one record.
//
// It is a native client rather than lego's providers/dns/digitalocean,
// which finds the zone by SOA queries through a process-wide resolver,
// follows CNAMEs unless the process environment says not to, and keeps
// record ids in memory (a restarted process cannot remove its records).
package digitalocean

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

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is DigitalOcean's API.
const DefaultEndpoint = "https://api.digitalocean.com"

// minTTL is DigitalOcean's smallest TTL.
const minTTL = 30

// NameServers are the name servers of every DigitalOcean domain.
var NameServers = []string{"ns1.digitalocean.com", "ns2.digitalocean.com", "ns3.digitalocean.com"}

// Config is what a Provider needs.
type Config struct {
	APIToken secret.String
	// Endpoint replaces DefaultEndpoint.
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one DigitalOcean account. It is safe for concurrent use.
type Provider struct {
	api *rest.Client
	ttl int
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
		return nil, fmt.Errorf("configuring DigitalOcean: endpoint: %w", err)
	}
	if cfg.APIToken == "" {
		return nil, errors.New("configuring DigitalOcean: apiToken is required")
	}
	return &Provider{
		api: &rest.Client{BaseURL: base.JoinPath("v2"), HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: rest.Bearer(cfg.APIToken)},
		ttl: max(cfg.TTL, minTTL),
	}, nil
}

// errorMessage renders {"id":"unauthorized","message":"Unable to authenticate you."}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	return e.ID + ": " + e.Message
}

type links struct {
	Pages struct {
		Next string `json:"next"`
	} `json:"pages"`
}

type record struct {
	ID   int    `json:"id,omitempty"`
	Type string `json:"type"`
	Name string `json:"name"`
	Data string `json:"data"`
	TTL  int    `json:"ttl"`
}

// Zones implements dns.ZoneLister, following the pages.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var names []string
	for page := 1; ; page++ {
		var out struct {
			Domains []struct {
				Name string `json:"name"`
			} `json:"domains"`
			Links links `json:"links"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {"200"}}
		if err := p.api.Do(ctx, http.MethodGet, "/domains", q, nil, &out); err != nil {
			return nil, fmt.Errorf("listing domains: %w", err)
		}
		for _, d := range out.Domains {
			names = append(names, d.Name)
		}
		if out.Links.Pages.Next == "" || len(out.Domains) == 0 {
			return names, nil
		}
	}
}

// NameServers implements dns.NameServerReporter: DigitalOcean serves every
// domain from the same three servers.
func (p *Provider) NameServers(context.Context, string) ([]string, error) {
	return NameServers, nil
}

func (p *Provider) records(ctx context.Context, zone, fqdn string) ([]record, error) {
	var all []record
	for page := 1; ; page++ {
		var out struct {
			Records []record `json:"domain_records"`
			Links   links    `json:"links"`
		}
		q := url.Values{"type": {"TXT"}, "name": {strings.TrimSuffix(fqdn, ".")}, "page": {strconv.Itoa(page)}, "per_page": {"200"}}
		if err := p.api.Do(ctx, http.MethodGet, rest.Path("domains", zone, "records"), q, nil, &out); err != nil {
			return nil, fmt.Errorf("listing TXT records: %w", err)
		}
		all = append(all, out.Records...)
		if out.Links.Pages.Next == "" || len(out.Records) == 0 {
			return all, nil
		}
	}
}

// relative is fqdn relative to zone, "@" at the apex.
func relative(zone, fqdn string) string {
	name := strings.TrimSuffix(strings.ToLower(fqdn), ".")
	zone = strings.TrimSuffix(strings.ToLower(zone), ".")
	if name == zone {
		return "@"
	}
	return strings.TrimSuffix(name, "."+zone)
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	zone = strings.TrimSuffix(strings.ToLower(zone), ".")
	existing, err := p.records(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	for _, v := range values {
		if slices.ContainsFunc(existing, func(r record) bool { return rest.Unquote(r.Data) == v }) {
			continue
		}
		rec := record{Type: "TXT", Name: relative(zone, fqdn), Data: v, TTL: p.ttl}
		if err := p.api.Do(ctx, http.MethodPost, rest.Path("domains", zone, "records"), nil, rec, nil); err != nil {
			return fmt.Errorf("creating TXT record: %w", err)
		}
	}
	return nil
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	zone = strings.TrimSuffix(strings.ToLower(zone), ".")
	existing, err := p.records(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range existing {
		if !slices.Contains(values, rest.Unquote(r.Data)) {
			continue
		}
		err := p.api.Do(ctx, http.MethodDelete, rest.Path("domains", zone, "records", strconv.Itoa(r.ID)), nil, nil, nil)
		if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
			errs = append(errs, fmt.Errorf("deleting TXT record %d: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}
