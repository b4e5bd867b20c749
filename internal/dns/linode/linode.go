// Package linode holds a DNS provider for Linode's (Akamai Cloud) API v4
// (https://techdocs.akamai.com/linode-api/reference/api):
//
//	GET    /v4/domains?page=&page_size=                 the domains
//	GET    /v4/domains/{id}/records?page=&page_size=    a domain's records
//	POST   /v4/domains/{id}/records                     {"type":"TXT","name","target","ttl_sec"}
//	DELETE /v4/domains/{id}/records/{recordId}
//
// with "Authorization: Bearer <token>"; record names are relative ("" at
// the apex). Each value is one record.
//
// lego's providers/dns/linode cannot be built here (its client module is
// refused by the module proxy), so this is a native client.
package linode

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

// DefaultEndpoint is Linode's API.
const (
	DefaultEndpoint = "https://api.linode.com/v4"
	pageSize        = 500
	minTTL          = 300
)

// NameServers serve every Linode domain.
var NameServers = []string{"ns1.linode.com", "ns2.linode.com", "ns3.linode.com", "ns4.linode.com", "ns5.linode.com"}

// Config is what a Provider needs.
type Config struct {
	APIToken   secret.String
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one Linode account. It is safe for concurrent use.
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
		return nil, fmt.Errorf("configuring Linode: endpoint: %w", err)
	}
	if cfg.APIToken == "" {
		return nil, errors.New("configuring Linode: apiToken is required")
	}
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: rest.Bearer(cfg.APIToken)},
		ttl: max(cfg.TTL, minTTL),
	}, nil
}

// errorMessage renders {"errors":[{"reason","field"}]}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Errors []struct {
			Reason string `json:"reason"`
			Field  string `json:"field"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	parts := make([]string, len(e.Errors))
	for i, x := range e.Errors {
		parts[i] = x.Reason
		if x.Field != "" {
			parts[i] = x.Field + ": " + x.Reason
		}
	}
	return strings.Join(parts, "; ")
}

type domain struct {
	ID     int    `json:"id"`
	Domain string `json:"domain"`
}

type record struct {
	ID     int    `json:"id,omitempty"`
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target string `json:"target"`
	TTL    int    `json:"ttl_sec,omitempty"`
}

// pages fetches every page of path into fn.
func (p *Provider) pages(ctx context.Context, path string, fn func(json.RawMessage) error) error {
	for page := 1; ; page++ {
		var out struct {
			Data  json.RawMessage `json:"data"`
			Page  int             `json:"page"`
			Pages int             `json:"pages"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "page_size": {strconv.Itoa(pageSize)}}
		if err := p.api.Do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
			return err
		}
		if err := fn(out.Data); err != nil {
			return err
		}
		if page >= out.Pages {
			return nil
		}
	}
}

func (p *Provider) domains(ctx context.Context) ([]domain, error) {
	var all []domain
	err := p.pages(ctx, "/domains", func(raw json.RawMessage) error {
		var ds []domain
		err := json.Unmarshal(raw, &ds)
		all = append(all, ds...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing domains: %w", err)
	}
	return all, nil
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	ds, err := p.domains(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Domain
	}
	return names, nil
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(context.Context, string) ([]string, error) { return NameServers, nil }

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// find returns the domain id of zone and the TXT records at fqdn.
func (p *Provider) find(ctx context.Context, zone, fqdn string) (int, string, []record, error) {
	zone = normalize(zone)
	ds, err := p.domains(ctx)
	if err != nil {
		return 0, "", nil, err
	}
	id := 0
	for _, d := range ds {
		if normalize(d.Domain) == zone {
			id = d.ID
		}
	}
	if id == 0 {
		return 0, "", nil, fmt.Errorf("domain %s is not in this Linode account", zone)
	}
	name := ""
	if n := normalize(fqdn); n != zone {
		name = strings.TrimSuffix(n, "."+zone)
	}
	var recs []record
	err = p.pages(ctx, rest.Path("domains", strconv.Itoa(id), "records"), func(raw json.RawMessage) error {
		var rs []record
		if err := json.Unmarshal(raw, &rs); err != nil {
			return err
		}
		for _, r := range rs {
			if r.Type == "TXT" && strings.EqualFold(r.Name, name) {
				recs = append(recs, r)
			}
		}
		return nil
	})
	if err != nil {
		return 0, "", nil, fmt.Errorf("listing records of %s: %w", zone, err)
	}
	return id, name, recs, nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	id, name, existing, err := p.find(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	for _, v := range values {
		if slices.ContainsFunc(existing, func(r record) bool { return r.Target == v }) {
			continue
		}
		rec := record{Type: "TXT", Name: name, Target: v, TTL: p.ttl}
		if err := p.api.Do(ctx, http.MethodPost, rest.Path("domains", strconv.Itoa(id), "records"), nil, rec, nil); err != nil {
			return fmt.Errorf("creating TXT record: %w", err)
		}
	}
	return nil
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	id, _, existing, err := p.find(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range existing {
		if slices.Contains(values, r.Target) {
			err := p.api.Do(ctx, http.MethodDelete, rest.Path("domains", strconv.Itoa(id), "records", strconv.Itoa(r.ID)), nil, nil, nil)
			if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
				errs = append(errs, fmt.Errorf("deleting TXT record %d: %w", r.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}
