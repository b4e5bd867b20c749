// Package ionos holds a DNS provider for the IONOS Hosting DNS API v1
// (https://developer.hosting.ionos.com/docs/dns):
//
//	GET    /dns/v1/zones                                           the zones
//	GET    /dns/v1/zones/{zoneId}?recordName={fqdn}&recordType=TXT the TXT records at a name
//	POST   /dns/v1/zones/{zoneId}/records    [{"name","type","content","ttl","prio","disabled"}]
//	DELETE /dns/v1/zones/{zoneId}/records/{recordId}
//
// with "X-API-Key: <prefix>.<secret>". Each value is one record.
//
// It is a native client rather than lego's providers/dns/ionos, which
// finds the zone by SOA queries through a process-wide resolver and follows
// CNAMEs unless the process environment says not to.
package ionos

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is the IONOS Hosting DNS API.
const (
	DefaultEndpoint = "https://api.hosting.ionos.com/dns/v1"
	minTTL          = 60
)

// Config is what a Provider needs.
type Config struct {
	// APIKey is "<public prefix>.<secret>".
	APIKey     secret.String
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one IONOS account. It is safe for concurrent use.
type Provider struct {
	api *rest.Client
	ttl int
}

var (
	_ dns.Provider   = (*Provider)(nil)
	_ dns.ZoneLister = (*Provider)(nil)
)

// New checks cfg and returns a Provider. It does not contact the API.
func New(cfg Config) (*Provider, error) {
	base, err := rest.ParseBase(cmp.Or(cfg.Endpoint, DefaultEndpoint))
	if err != nil {
		return nil, fmt.Errorf("configuring IONOS: endpoint: %w", err)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("configuring IONOS: apiKey is required")
	}
	key := cfg.APIKey
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: func(r *http.Request, _ []byte) error { r.Header.Set("X-API-Key", key.Reveal()); return nil }},
		ttl: max(cfg.TTL, minTTL),
	}, nil
}

// errorMessage renders [{"code","message"}].
func errorMessage(_ int, body []byte) string {
	var errs []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &errs) != nil || len(errs) == 0 {
		return ""
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Code + ": " + e.Message
	}
	return strings.Join(parts, "; ")
}

type zoneInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type record struct {
	ID       string `json:"id,omitempty"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Content  string `json:"content"`
	TTL      int    `json:"ttl"`
	Prio     int    `json:"prio"`
	Disabled bool   `json:"disabled"`
}

func (p *Provider) zones(ctx context.Context) ([]zoneInfo, error) {
	var zones []zoneInfo
	if err := p.api.Do(ctx, http.MethodGet, "/zones", nil, nil, &zones); err != nil {
		return nil, fmt.Errorf("listing zones: %w", err)
	}
	return zones, nil
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	zones, err := p.zones(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(zones))
	for i, z := range zones {
		names[i] = z.Name
	}
	return names, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func (p *Provider) find(ctx context.Context, zone, fqdn string) (string, []record, error) {
	zones, err := p.zones(ctx)
	if err != nil {
		return "", nil, err
	}
	i := slices.IndexFunc(zones, func(z zoneInfo) bool { return normalize(z.Name) == normalize(zone) })
	if i < 0 {
		return "", nil, fmt.Errorf("zone %s is not in this IONOS account", normalize(zone))
	}
	id := zones[i].ID
	var out struct {
		Records []record `json:"records"`
	}
	q := url.Values{"recordName": {normalize(fqdn)}, "recordType": {"TXT"}}
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("zones", id), q, nil, &out); err != nil {
		return "", nil, fmt.Errorf("listing TXT records: %w", err)
	}
	return id, out.Records, nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	id, existing, err := p.find(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	var add []record
	for _, v := range values {
		if !slices.ContainsFunc(existing, func(r record) bool { return rest.Unquote(r.Content) == v }) {
			add = append(add, record{Name: normalize(fqdn), Type: "TXT", Content: v, TTL: p.ttl})
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := p.api.Do(ctx, http.MethodPost, rest.Path("zones", id, "records"), nil, add, nil); err != nil {
		return fmt.Errorf("creating TXT records: %w", err)
	}
	return nil
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	id, existing, err := p.find(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range existing {
		if slices.Contains(values, rest.Unquote(r.Content)) {
			err := p.api.Do(ctx, http.MethodDelete, rest.Path("zones", id, "records", r.ID), nil, nil, nil)
			if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
				errs = append(errs, fmt.Errorf("deleting TXT record %s: %w", r.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}
