// Package powerdns holds a DNS provider for the HTTP API of PowerDNS
// Authoritative Server 4.x (https://doc.powerdns.com/authoritative/http-api/):
//
//	GET   {apiUrl}/api/v1/servers/{server}/zones            the zones
//	GET   {apiUrl}/api/v1/servers/{server}/zones/{zone}     one zone with its RRsets
//	PATCH {apiUrl}/api/v1/servers/{server}/zones/{zone}     {"rrsets":[{changetype REPLACE|DELETE}]}
//	PUT   {apiUrl}/api/v1/servers/{server}/zones/{zone}/notify
//
// with the key in X-API-Key. A change is live on the server as soon as the
// PATCH returns; primary zones are then NOTIFYed so secondaries follow.
//
// It is a native client rather than lego's providers/dns/pdns, which finds
// the zone by SOA queries through a process-wide resolver and follows CNAMEs
// unless the process environment says not to; certkeeper does both itself.
package powerdns

import (
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

// Config is what a Provider needs.
type Config struct {
	// APIURL is the server's web server, such as http://ns1:8081.
	APIURL string
	APIKey secret.String
	// ServerID is the server in the API path; default localhost.
	ServerID   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one PowerDNS server. It is safe for concurrent use.
type Provider struct {
	api    *rest.Client
	server string
	ttl    int
	// mu serializes read-modify-write of RRsets: PATCH replaces a whole
	// RRset.
	mu sync.Mutex
}

var (
	_ dns.Provider           = (*Provider)(nil)
	_ dns.ZoneLister         = (*Provider)(nil)
	_ dns.NameServerReporter = (*Provider)(nil)
)

// New checks cfg and returns a Provider. It does not contact the server.
func New(cfg Config) (*Provider, error) {
	base, err := rest.ParseBase(cfg.APIURL)
	if err != nil {
		return nil, fmt.Errorf("configuring PowerDNS: apiUrl: %w", err)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("configuring PowerDNS: apiKey is required")
	}
	base = base.JoinPath("api", "v1")
	server := cfg.ServerID
	if server == "" {
		server = "localhost"
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 60
	}
	key := cfg.APIKey
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: func(r *http.Request, _ []byte) error { r.Header.Set("X-API-Key", key.Reveal()); return nil }},
		server: server, ttl: ttl,
	}, nil
}

// errorMessage is the API's {"error": "..."}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		return e.Error
	}
	return ""
}

type zoneInfo struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Kind   string  `json:"kind"`
	RRsets []rrset `json:"rrsets,omitempty"`
}

type rrset struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	TTL        int      `json:"ttl,omitempty"`
	ChangeType string   `json:"changetype,omitempty"`
	Records    []record `json:"records"`
}

type record struct {
	Content  string `json:"content"`
	Disabled bool   `json:"disabled"`
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var zones []zoneInfo
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("servers", p.server, "zones"), nil, nil, &zones); err != nil {
		return nil, fmt.Errorf("listing zones: %w", err)
	}
	names := make([]string, len(zones))
	for i, z := range zones {
		names[i] = z.Name
	}
	return names, nil
}

// zoneID is the zone's id in API paths: its name with a trailing dot.
func zoneID(zone string) string {
	return strings.TrimSuffix(strings.ToLower(zone), ".") + "."
}

func (p *Provider) zone(ctx context.Context, zone string) (zoneInfo, error) {
	var z zoneInfo
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("servers", p.server, "zones", zoneID(zone)), nil, nil, &z); err != nil {
		return z, fmt.Errorf("reading zone %s: %w", zone, err)
	}
	return z, nil
}

// NameServers implements dns.NameServerReporter with the zone's apex NS
// RRset.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	z, err := p.zone(ctx, zone)
	if err != nil {
		return nil, err
	}
	var ns []string
	for _, set := range z.RRsets {
		if set.Type == "NS" && strings.EqualFold(set.Name, zoneID(zone)) {
			for _, r := range set.Records {
				if !r.Disabled {
					ns = append(ns, r.Content)
				}
			}
		}
	}
	return ns, nil
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

// change reads the TXT RRset at fqdn, applies edit and writes the result
// back (REPLACE, or DELETE when empty), then NOTIFYs a primary zone's
// secondaries.
func (p *Provider) change(ctx context.Context, zone, fqdn string, edit func([]string) []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	z, err := p.zone(ctx, zone)
	if err != nil {
		return err
	}
	name := strings.ToLower(fqdn)
	var cur []string
	for _, set := range z.RRsets {
		if set.Type == "TXT" && strings.EqualFold(set.Name, name) {
			for _, r := range set.Records {
				cur = append(cur, rest.Unquote(r.Content))
			}
		}
	}
	before := slices.Clone(cur)
	next := edit(cur)
	if slices.Equal(before, next) {
		return nil
	}
	set := rrset{Name: name, Type: "TXT", TTL: p.ttl, ChangeType: "REPLACE", Records: []record{}}
	for _, v := range next {
		set.Records = append(set.Records, record{Content: rest.Quote(v)})
	}
	if len(next) == 0 {
		set = rrset{Name: name, Type: "TXT", ChangeType: "DELETE", Records: []record{}}
	}
	path := rest.Path("servers", p.server, "zones", zoneID(zone))
	if err := p.api.Do(ctx, http.MethodPatch, path, nil, map[string][]rrset{"rrsets": {set}}, nil); err != nil {
		return fmt.Errorf("writing TXT %s: %w", fqdn, err)
	}
	if z.Kind == "Master" || z.Kind == "Primary" {
		if err := p.api.Do(ctx, http.MethodPut, path+"/notify", nil, nil, nil); err != nil {
			return fmt.Errorf("notifying the secondaries of zone %s: %w", zone, err)
		}
	}
	return nil
}
