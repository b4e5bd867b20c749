// Package dnsmadeeasy holds a DNS provider for DNS Made Easy's REST API
// v2.0 (https://api-docs.dnsmadeeasy.com/):
//
//	GET    /V2.0/dns/managed/                                       the domains (paged)
//	GET    /V2.0/dns/managed/{id}/records?recordName=&type=TXT      the TXT records at a name
//	POST   /V2.0/dns/managed/{id}/records    {"name","type":"TXT","value","ttl","gtdLocation"}
//	DELETE /V2.0/dns/managed/{id}/records/{recordId}
//
// signed with x-dnsme-apiKey, x-dnsme-requestDate (an HTTP date) and
// x-dnsme-hmac, the hex HMAC-SHA1 of the date under the secret key. Record
// names are relative ("" at the apex); each value is one record.
//
// It is a native client rather than lego's providers/dns/dnsmadeeasy,
// which finds the zone by SOA queries through a process-wide resolver and
// follows CNAMEs unless the process environment says not to.
package dnsmadeeasy

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // DNS Made Easy's request signature is HMAC-SHA1
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Endpoints of the production and sandbox APIs.
const (
	DefaultEndpoint = "https://api.dnsmadeeasy.com/V2.0"
	SandboxEndpoint = "https://api.sandbox.dnsmadeeasy.com/V2.0"
)

// Config is what a Provider needs.
type Config struct {
	APIKey    string
	APISecret secret.String
	// Endpoint replaces DefaultEndpoint (SandboxEndpoint for the sandbox).
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
	// Now is the clock for request dates; nil means time.Now.
	Now func() time.Time
}

// Provider is one DNS Made Easy account. It is safe for concurrent use.
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
		return nil, fmt.Errorf("configuring DNS Made Easy: endpoint: %w", err)
	}
	if cfg.APIKey == "" || cfg.APISecret == "" {
		return nil, errors.New("configuring DNS Made Easy: apiKey and apiSecret are required")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	key, sec := cfg.APIKey, cfg.APISecret
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 60
	}
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: func(r *http.Request, _ []byte) error {
				date := now().UTC().Format(http.TimeFormat)
				r.Header.Set("x-dnsme-apiKey", key)
				r.Header.Set("x-dnsme-requestDate", date)
				r.Header.Set("x-dnsme-hmac", Sign(sec.Reveal(), date))
				return nil
			}},
		ttl: ttl,
	}, nil
}

// Sign is the x-dnsme-hmac of a request date.
func Sign(secretKey, date string) string {
	m := hmac.New(sha1.New, []byte(secretKey))
	m.Write([]byte(date))
	return hex.EncodeToString(m.Sum(nil))
}

// errorMessage renders {"error":["…"]}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Error []string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		return strings.Join(e.Error, "; ")
	}
	return ""
}

type domain struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type record struct {
	ID          int    `json:"id,omitempty"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Value       string `json:"value"`
	TTL         int    `json:"ttl"`
	GtdLocation string `json:"gtdLocation"`
}

func (p *Provider) domains(ctx context.Context) ([]domain, error) {
	var all []domain
	for page := 0; ; page++ {
		var out struct {
			Data       []domain `json:"data"`
			TotalPages int      `json:"totalPages"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "rows": {"500"}}
		if err := p.api.Do(ctx, http.MethodGet, "/dns/managed/", q, nil, &out); err != nil {
			return nil, fmt.Errorf("listing domains: %w", err)
		}
		all = append(all, out.Data...)
		if page+1 >= out.TotalPages || len(out.Data) == 0 {
			return all, nil
		}
	}
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	ds, err := p.domains(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name
	}
	return names, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func (p *Provider) find(ctx context.Context, zone, fqdn string) (int, string, []record, error) {
	ds, err := p.domains(ctx)
	if err != nil {
		return 0, "", nil, err
	}
	i := slices.IndexFunc(ds, func(d domain) bool { return normalize(d.Name) == normalize(zone) })
	if i < 0 {
		return 0, "", nil, fmt.Errorf("domain %s is not in this DNS Made Easy account", normalize(zone))
	}
	name := ""
	if n := normalize(fqdn); n != normalize(zone) {
		name = strings.TrimSuffix(n, "."+normalize(zone))
	}
	var out struct {
		Data []record `json:"data"`
	}
	q := url.Values{"recordName": {name}, "type": {"TXT"}}
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("dns", "managed", strconv.Itoa(ds[i].ID), "records"), q, nil, &out); err != nil {
		return 0, "", nil, fmt.Errorf("listing TXT records: %w", err)
	}
	return ds[i].ID, name, out.Data, nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	id, name, existing, err := p.find(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	for _, v := range values {
		if slices.ContainsFunc(existing, func(r record) bool { return rest.Unquote(r.Value) == v }) {
			continue
		}
		rec := record{Name: name, Type: "TXT", Value: rest.Quote(v), TTL: p.ttl, GtdLocation: "DEFAULT"}
		if err := p.api.Do(ctx, http.MethodPost, rest.Path("dns", "managed", strconv.Itoa(id), "records"), nil, rec, nil); err != nil {
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
		if slices.Contains(values, rest.Unquote(r.Value)) {
			err := p.api.Do(ctx, http.MethodDelete, rest.Path("dns", "managed", strconv.Itoa(id), "records", strconv.Itoa(r.ID)), nil, nil, nil)
			if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
				errs = append(errs, fmt.Errorf("deleting TXT record %d: %w", r.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}
