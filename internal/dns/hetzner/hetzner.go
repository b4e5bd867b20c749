// Package hetzner holds a DNS provider for the DNS zones of the Hetzner
// Cloud API (https://docs.hetzner.cloud/reference/cloud#zones), which
// replaced the DNS Console API:
//
//	GET  /v1/zones?page=&per_page=                                        zones, with their name servers
//	GET  /v1/zones/{zone}/rrsets/{name}/TXT                              one RRset
//	POST /v1/zones/{zone}/rrsets/{name}/TXT/actions/add_records          {"ttl","records":[{"value"}]}
//	POST /v1/zones/{zone}/rrsets/{name}/TXT/actions/remove_records       {"records":[{"value"}]}
//	GET  /v1/actions/{id}                                                until the action is done
//
// with "Authorization: Bearer <token>"; {name} is relative to the zone
// ("@" at the apex) and values are in presentation format (quoted).
//
// It is a native client rather than lego's providers/dns/hetzner, which
// finds the zone by SOA queries through a process-wide resolver and follows
// CNAMEs unless the process environment says not to; certkeeper does both
// itself, and lists zones, which lego does not.
package hetzner

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
	"time"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is the Hetzner Cloud API.
const DefaultEndpoint = "https://api.hetzner.cloud/v1"

// Config is what a Provider needs.
type Config struct {
	APIToken secret.String
	// Endpoint replaces DefaultEndpoint.
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one Hetzner Cloud project. It is safe for concurrent use.
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
		return nil, fmt.Errorf("configuring Hetzner: endpoint: %w", err)
	}
	if cfg.APIToken == "" {
		return nil, errors.New("configuring Hetzner: apiToken is required")
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 60
	}
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: rest.Bearer(cfg.APIToken)},
		ttl: ttl,
	}, nil
}

// errorMessage renders {"error":{"code","message","details"}}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return ""
	}
	return e.Error.Code + ": " + e.Error.Message
}

type zoneInfo struct {
	ID                       int64  `json:"id"`
	Name                     string `json:"name"`
	AuthoritativeNameservers struct {
		Assigned []string `json:"assigned"`
	} `json:"authoritative_nameservers"`
}

type recordValue struct {
	Value string `json:"value"`
}

type action struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (p *Provider) listZones(ctx context.Context, name string) ([]zoneInfo, error) {
	var all []zoneInfo
	for page := 1; ; page++ {
		var out struct {
			Zones []zoneInfo `json:"zones"`
			Meta  struct {
				Pagination struct {
					NextPage *int `json:"next_page"`
				} `json:"pagination"`
			} `json:"meta"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {"50"}}
		if name != "" {
			q.Set("name", name)
		}
		if err := p.api.Do(ctx, http.MethodGet, "/zones", q, nil, &out); err != nil {
			return nil, fmt.Errorf("listing zones: %w", err)
		}
		all = append(all, out.Zones...)
		if out.Meta.Pagination.NextPage == nil || len(out.Zones) == 0 {
			return all, nil
		}
	}
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

// NameServers implements dns.NameServerReporter with the zone's assigned
// authoritative name servers.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	zone = normalize(zone)
	zones, err := p.listZones(ctx, zone)
	if err != nil {
		return nil, err
	}
	for _, z := range zones {
		if normalize(z.Name) == zone {
			return z.AuthoritativeNameservers.Assigned, nil
		}
	}
	return nil, fmt.Errorf("zone %s is not in this Hetzner project", zone)
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// rrsetPath is the path of the TXT RRset at fqdn in zone.
func rrsetPath(zone, fqdn string) string {
	zone, name := normalize(zone), normalize(fqdn)
	rel := "@"
	if name != zone {
		rel = strings.TrimSuffix(name, "."+zone)
	}
	return rest.Path("zones", zone, "rrsets", rel, "TXT")
}

// current returns the values of the TXT RRset at fqdn; none when absent.
func (p *Provider) current(ctx context.Context, zone, fqdn string) ([]string, error) {
	var out struct {
		RRset struct {
			Records []recordValue `json:"records"`
		} `json:"rrset"`
	}
	err := p.api.Do(ctx, http.MethodGet, rrsetPath(zone, fqdn), nil, nil, &out)
	if rest.IsStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	values := make([]string, len(out.RRset.Records))
	for i, r := range out.RRset.Records {
		values[i] = rest.Unquote(r.Value)
	}
	return values, nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	cur, err := p.current(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	var add []recordValue
	for _, v := range values {
		if !slices.Contains(cur, v) {
			add = append(add, recordValue{Value: rest.Quote(v)})
		}
	}
	if len(add) == 0 {
		return nil
	}
	body := struct {
		TTL     int           `json:"ttl"`
		Records []recordValue `json:"records"`
	}{p.ttl, add}
	return p.act(ctx, rrsetPath(zone, fqdn)+"/actions/add_records", body, "adding TXT records at "+fqdn)
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	cur, err := p.current(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	var remove []recordValue
	for _, v := range values {
		if slices.Contains(cur, v) {
			remove = append(remove, recordValue{Value: rest.Quote(v)})
		}
	}
	if len(remove) == 0 {
		return nil
	}
	body := struct {
		Records []recordValue `json:"records"`
	}{remove}
	return p.act(ctx, rrsetPath(zone, fqdn)+"/actions/remove_records", body, "removing TXT records at "+fqdn)
}

// act starts an action and waits until it succeeded or failed.
func (p *Provider) act(ctx context.Context, path string, body any, what string) error {
	var out struct {
		Action action `json:"action"`
	}
	if err := p.api.Do(ctx, http.MethodPost, path, nil, body, &out); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	a := out.Action
	for wait := 50 * time.Millisecond; a.Status == "running"; wait = min(wait*2, time.Second) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for action %d: %w", what, a.ID, ctx.Err())
		case <-time.After(wait):
		}
		var got struct {
			Action action `json:"action"`
		}
		if err := p.api.Do(ctx, http.MethodGet, rest.Path("actions", strconv.FormatInt(a.ID, 10)), nil, nil, &got); err != nil {
			return fmt.Errorf("%s: reading action %d: %w", what, a.ID, err)
		}
		a = got.Action
	}
	if a.Status == "error" {
		msg := "failed"
		if a.Error != nil {
			msg = a.Error.Code + ": " + a.Error.Message
		}
		return fmt.Errorf("%s: action %d %s", what, a.ID, msg)
	}
	return nil
}
