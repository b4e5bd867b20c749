// Package porkbun holds a DNS provider for Porkbun's API v3
// (https://porkbun.com/api/json/v3/documentation): every call is a POST
// whose JSON body carries "apikey" and "secretapikey":
//
//	/domain/listAll                                   {"start"} the domains, 1000 at a time
//	/domain/getNs/{domain}                            the name servers
//	/dns/retrieveByNameType/{domain}/TXT/{sub}        the TXT records at a name
//	/dns/create/{domain}                              {"name","type","content","ttl"}
//	/dns/delete/{domain}/{id}
//
// Each value is one record; Porkbun's smallest TTL is 600 seconds.
//
// It is a native client rather than lego's providers/dns/porkbun, which
// finds the zone by SOA queries through a process-wide resolver, follows
// CNAMEs unless the process environment says not to, and keeps record ids
// in memory.
package porkbun

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is Porkbun's API.
const (
	DefaultEndpoint = "https://api.porkbun.com/api/json/v3"
	minTTL          = 600
	pageSize        = 1000
)

// Config is what a Provider needs.
type Config struct {
	APIKey       secret.String
	SecretAPIKey secret.String
	Endpoint     string
	TTL          int
	HTTPClient   *http.Client
}

// Provider is one Porkbun account. It is safe for concurrent use.
type Provider struct {
	api         *rest.Client
	key, secret secret.String
	ttl         int
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
		return nil, fmt.Errorf("configuring Porkbun: endpoint: %w", err)
	}
	if cfg.APIKey == "" || cfg.SecretAPIKey == "" {
		return nil, errors.New("configuring Porkbun: apiKey and secretApiKey are required")
	}
	return &Provider{api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage},
		key: cfg.APIKey, secret: cfg.SecretAPIKey, ttl: max(cfg.TTL, minTTL)}, nil
}

func errorMessage(_ int, body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil {
		return e.Message
	}
	return ""
}

// call posts fields plus the credentials to path and decodes the answer,
// which must have status SUCCESS.
func (p *Provider) call(ctx context.Context, path string, fields map[string]string, out any) error {
	body := map[string]string{"apikey": p.key.Reveal(), "secretapikey": p.secret.Reveal()}
	for k, v := range fields {
		body[k] = v
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	data, err := p.api.Raw(ctx, http.MethodPost, path, nil, raw)
	if err != nil {
		return err
	}
	var status struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(data, &status); err != nil {
		return fmt.Errorf("POST %s: decoding answer: %w", path, err)
	}
	if status.Status != "SUCCESS" {
		return fmt.Errorf("POST %s: Porkbun answered %s: %s", path, status.Status, status.Message)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var names []string
	for start := 0; ; start += pageSize {
		var out struct {
			Domains []struct {
				Domain string `json:"domain"`
			} `json:"domains"`
		}
		if err := p.call(ctx, "/domain/listAll", map[string]string{"start": strconv.Itoa(start)}, &out); err != nil {
			return nil, fmt.Errorf("listing domains: %w", err)
		}
		for _, d := range out.Domains {
			names = append(names, d.Domain)
		}
		if len(out.Domains) < pageSize {
			return names, nil
		}
	}
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	var out struct {
		NS []string `json:"ns"`
	}
	if err := p.call(ctx, rest.Path("domain", "getNs", normalize(zone)), nil, &out); err != nil {
		return nil, fmt.Errorf("reading the name servers of %s: %w", zone, err)
	}
	return out.NS, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

type record struct {
	ID      string `json:"id"`
	Content string `json:"content"`
}

func (p *Provider) records(ctx context.Context, zone, sub string) ([]record, error) {
	path := rest.Path("dns", "retrieveByNameType", zone, "TXT")
	if sub != "" {
		path += rest.Path(sub)
	}
	var out struct {
		Records []record `json:"records"`
	}
	if err := p.call(ctx, path, nil, &out); err != nil {
		return nil, fmt.Errorf("listing TXT records: %w", err)
	}
	return out.Records, nil
}

func split(zone, fqdn string) (string, string) {
	zone, name := normalize(zone), normalize(fqdn)
	if name == zone {
		return zone, ""
	}
	return zone, strings.TrimSuffix(name, "."+zone)
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	zone, sub := split(zone, fqdn)
	existing, err := p.records(ctx, zone, sub)
	if err != nil {
		return err
	}
	for _, v := range values {
		if slices.ContainsFunc(existing, func(r record) bool { return rest.Unquote(r.Content) == v }) {
			continue
		}
		fields := map[string]string{"name": sub, "type": "TXT", "content": v, "ttl": strconv.Itoa(p.ttl)}
		if err := p.call(ctx, rest.Path("dns", "create", zone), fields, nil); err != nil {
			return fmt.Errorf("creating TXT record: %w", err)
		}
	}
	return nil
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	zone, sub := split(zone, fqdn)
	existing, err := p.records(ctx, zone, sub)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range existing {
		if slices.Contains(values, rest.Unquote(r.Content)) {
			if err := p.call(ctx, rest.Path("dns", "delete", zone, r.ID), nil, nil); err != nil {
				errs = append(errs, fmt.Errorf("deleting TXT record %s: %w", r.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}
