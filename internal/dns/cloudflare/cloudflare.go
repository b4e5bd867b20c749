// Package cloudflare holds a DNS provider for Cloudflare's API v4
// (https://developers.cloudflare.com/api/resources/dns/subresources/records/):
//
//	GET    /zones?name=&page=&per_page=                 zones, with name_servers
//	GET    /zones/{zone_id}/dns_records?type=TXT&name=  the TXT records at a name
//	POST   /zones/{zone_id}/dns_records                 {"type":"TXT","name","content","ttl"}
//	DELETE /zones/{zone_id}/dns_records/{id}
//
// with "Authorization: Bearer <token>" (or the legacy X-Auth-Email and
// X-Auth-Key). Each value is one record; the RRset is the records at a name.
//
// It is a native client rather than lego's providers/dns/cloudflare: lego's
// provider finds the zone by SOA queries through a process-wide resolver,
// follows CNAMEs unless the process environment says not to, and keeps the
// ids of the records it made in memory, so a restarted process cannot
// remove them; certkeeper picks zones and follows CNAMEs itself and must
// clean up after a crash, and it lists zones, which lego does not.
package cloudflare

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

// DefaultEndpoint is Cloudflare's API v4.
const DefaultEndpoint = "https://api.cloudflare.com/client/v4"

// perPage is the page size asked for; Cloudflare allows up to 50 zones.
const perPage = 50

// codeIdenticalRecord is Cloudflare's error for a record that exists.
const codeIdenticalRecord = 81058

// Config is what a Provider needs: an API token, or Email and APIKey.
type Config struct {
	// APIToken needs DNS:Edit, and Zone:Read unless ZoneAPIToken has it.
	APIToken     secret.String
	ZoneAPIToken secret.String
	Email        string
	APIKey       secret.String
	// Endpoint replaces DefaultEndpoint.
	Endpoint string
	// TTL of the records; Cloudflare's minimum is 60 (1 means automatic).
	TTL        int
	HTTPClient *http.Client
}

// Provider is one Cloudflare account. It is safe for concurrent use.
type Provider struct {
	dnsAPI  *rest.Client
	zoneAPI *rest.Client
	ttl     int

	mu    sync.Mutex
	zones map[string]zone // by name
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
		return nil, fmt.Errorf("configuring Cloudflare: endpoint: %w", err)
	}
	var dnsAuth, zoneAuth func(*http.Request, []byte) error
	switch {
	case cfg.APIToken != "":
		dnsAuth = rest.Bearer(cfg.APIToken)
		zoneAuth = dnsAuth
		if cfg.ZoneAPIToken != "" {
			zoneAuth = rest.Bearer(cfg.ZoneAPIToken)
		}
	case cfg.Email != "" && cfg.APIKey != "":
		dnsAuth = func(r *http.Request, _ []byte) error {
			r.Header.Set("X-Auth-Email", cfg.Email)
			r.Header.Set("X-Auth-Key", cfg.APIKey.Reveal())
			return nil
		}
		zoneAuth = dnsAuth
	default:
		return nil, errors.New("configuring Cloudflare: an API token, or an e-mail and API key, is required")
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 60
	}
	client := func(auth func(*http.Request, []byte) error) *rest.Client {
		return &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, Authorize: auth, ErrorMessage: errorMessage}
	}
	return &Provider{dnsAPI: client(dnsAuth), zoneAPI: client(zoneAuth), ttl: ttl, zones: make(map[string]zone)}, nil
}

// envelope is every answer of API v4.
type envelope struct {
	Success    bool            `json:"success"`
	Errors     []apiMessage    `json:"errors"`
	Result     json.RawMessage `json:"result"`
	ResultInfo *struct {
		Page       int `json:"page"`
		TotalPages int `json:"total_pages"`
	} `json:"result_info"`
}

type apiMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type zone struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	NameServers       []string `json:"name_servers"`
	VanityNameServers []string `json:"vanity_name_servers"`
}

type record struct {
	ID      string `json:"id,omitempty"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content string `json:"content"`
	TTL     int    `json:"ttl"`
}

// errorMessage renders API v4's errors array: "9109: Invalid access token".
func errorMessage(_ int, body []byte) string {
	var env envelope
	if json.Unmarshal(body, &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	parts := make([]string, len(env.Errors))
	for i, e := range env.Errors {
		parts[i] = strconv.Itoa(e.Code) + ": " + e.Message
	}
	return strings.Join(parts, "; ")
}

// call sends one request and decodes the envelope's result into out.
func call(ctx context.Context, c *rest.Client, method, path string, query url.Values, in, out any) (envelope, error) {
	var env envelope
	if err := c.Do(ctx, method, path, query, in, &env); err != nil {
		return env, err
	}
	if !env.Success {
		return env, fmt.Errorf("%s %s: Cloudflare answered success=false: %s", method, path, errorMessage(0, mustJSON(env)))
	}
	if out != nil && len(env.Result) > 0 {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return env, fmt.Errorf("%s %s: decoding result: %w", method, path, err)
		}
	}
	return env, nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// listZones returns every zone, page after page; with name, only that one.
func (p *Provider) listZones(ctx context.Context, name string) ([]zone, error) {
	var all []zone
	for page := 1; ; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(perPage)}}
		if name != "" {
			q.Set("name", name)
		}
		var zones []zone
		env, err := call(ctx, p.zoneAPI, http.MethodGet, "/zones", q, nil, &zones)
		if err != nil {
			return nil, fmt.Errorf("listing zones: %w", err)
		}
		all = append(all, zones...)
		if env.ResultInfo == nil || page >= env.ResultInfo.TotalPages || len(zones) == 0 {
			break
		}
	}
	p.mu.Lock()
	for _, z := range all {
		p.zones[normalize(z.Name)] = z
	}
	p.mu.Unlock()
	return all, nil
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	zones, err := p.listZones(ctx, "")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(zones))
	for i, z := range zones {
		names[i] = z.Name
	}
	return names, nil
}

// zone returns the zone called name, asking the API when it is not known.
func (p *Provider) zone(ctx context.Context, name string) (zone, error) {
	name = normalize(name)
	p.mu.Lock()
	z, ok := p.zones[name]
	p.mu.Unlock()
	if ok {
		return z, nil
	}
	zones, err := p.listZones(ctx, name)
	if err != nil {
		return zone{}, err
	}
	for _, z := range zones {
		if normalize(z.Name) == name {
			return z, nil
		}
	}
	return zone{}, fmt.Errorf("zone %s is not in this Cloudflare account", name)
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(ctx context.Context, zoneName string) ([]string, error) {
	z, err := p.zone(ctx, zoneName)
	if err != nil {
		return nil, err
	}
	if len(z.VanityNameServers) > 0 {
		return z.VanityNameServers, nil
	}
	return z.NameServers, nil
}

// records returns the TXT records at fqdn.
func (p *Provider) records(ctx context.Context, zoneID, fqdn string) ([]record, error) {
	var all []record
	for page := 1; ; page++ {
		q := url.Values{"type": {"TXT"}, "name": {strings.TrimSuffix(fqdn, ".")}, "page": {strconv.Itoa(page)}, "per_page": {"100"}}
		var recs []record
		env, err := call(ctx, p.dnsAPI, http.MethodGet, rest.Path("zones", zoneID, "dns_records"), q, nil, &recs)
		if err != nil {
			return nil, fmt.Errorf("listing TXT records: %w", err)
		}
		all = append(all, recs...)
		if env.ResultInfo == nil || page >= env.ResultInfo.TotalPages || len(recs) == 0 {
			return all, nil
		}
	}
}

// Present implements dns.Provider: one record per value not there yet.
func (p *Provider) Present(ctx context.Context, zoneName, fqdn string, values []string) error {
	z, err := p.zone(ctx, zoneName)
	if err != nil {
		return err
	}
	existing, err := p.records(ctx, z.ID, fqdn)
	if err != nil {
		return err
	}
	for _, v := range values {
		if slices.ContainsFunc(existing, func(r record) bool { return rest.Unquote(r.Content) == v }) {
			continue
		}
		rec := record{Type: "TXT", Name: strings.TrimSuffix(fqdn, "."), Content: rest.Quote(v), TTL: p.ttl}
		_, err := call(ctx, p.dnsAPI, http.MethodPost, rest.Path("zones", z.ID, "dns_records"), nil, rec, nil)
		var re *rest.Error
		if errors.As(err, &re) && strings.HasPrefix(re.Message, strconv.Itoa(codeIdenticalRecord)+":") {
			continue
		}
		if err != nil {
			return fmt.Errorf("creating TXT record: %w", err)
		}
	}
	return nil
}

// CleanUp implements dns.Provider: the records holding values are deleted.
func (p *Provider) CleanUp(ctx context.Context, zoneName, fqdn string, values []string) error {
	z, err := p.zone(ctx, zoneName)
	if err != nil {
		return err
	}
	existing, err := p.records(ctx, z.ID, fqdn)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range existing {
		if !slices.Contains(values, rest.Unquote(r.Content)) {
			continue
		}
		_, err := call(ctx, p.dnsAPI, http.MethodDelete, rest.Path("zones", z.ID, "dns_records", r.ID), nil, nil, nil)
		if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
			errs = append(errs, fmt.Errorf("deleting TXT record %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }
