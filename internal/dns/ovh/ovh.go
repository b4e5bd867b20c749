// Package ovh holds a DNS provider for OVHcloud's API v1
// (https://eu.api.ovh.com/console/#/domain):
//
//	GET    /domain/zone                                          the zones
//	GET    /domain/zone/{zone}                                   one zone, with nameServers
//	GET    /domain/zone/{zone}/record?fieldType=TXT&subDomain=   record ids at a name
//	GET    /domain/zone/{zone}/record/{id}
//	POST   /domain/zone/{zone}/record    {"fieldType":"TXT","subDomain","target","ttl"}
//	DELETE /domain/zone/{zone}/record/{id}
//	POST   /domain/zone/{zone}/refresh                           applies the changes
//
// signed per request: X-Ovh-Application, X-Ovh-Consumer, X-Ovh-Timestamp
// (the server's clock, from GET /auth/time) and X-Ovh-Signature,
// "$1$" + hex SHA-1 of "secret+consumer+METHOD+URL+body+timestamp".
//
// It is a native client rather than lego's providers/dns/ovh, which finds
// the zone by SOA queries through a process-wide resolver, follows CNAMEs
// unless the process environment says not to, and keeps record ids in
// memory.
package ovh

import (
	"context"
	"crypto/sha1" //nolint:gosec // OVH's request signature is SHA-1
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Endpoints by OVH's names for them.
var Endpoints = map[string]string{
	"ovh-eu":        "https://eu.api.ovh.com/1.0",
	"ovh-ca":        "https://ca.api.ovh.com/1.0",
	"ovh-us":        "https://api.us.ovhcloud.com/1.0",
	"kimsufi-eu":    "https://eu.api.kimsufi.com/1.0",
	"soyoustart-eu": "https://eu.api.soyoustart.com/1.0",
}

// Config is what a Provider needs.
type Config struct {
	// Endpoint is a key of Endpoints or a URL; default ovh-eu.
	Endpoint          string
	ApplicationKey    string
	ApplicationSecret secret.String
	ConsumerKey       secret.String
	TTL               int
	HTTPClient        *http.Client
}

// Provider is one OVHcloud account. It is safe for concurrent use.
type Provider struct {
	api *rest.Client
	ttl int

	clockMu sync.Mutex
	delta   time.Duration // server time − local time
	synced  bool
}

var (
	_ dns.Provider           = (*Provider)(nil)
	_ dns.ZoneLister         = (*Provider)(nil)
	_ dns.NameServerReporter = (*Provider)(nil)
)

// New checks cfg and returns a Provider. It does not contact the API.
func New(cfg Config) (*Provider, error) {
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "ovh-eu"
	}
	if e, ok := Endpoints[endpoint]; ok {
		endpoint = e
	}
	base, err := rest.ParseBase(endpoint)
	if err != nil {
		return nil, fmt.Errorf("configuring OVH: endpoint: %w", err)
	}
	if cfg.ApplicationKey == "" || cfg.ApplicationSecret == "" || cfg.ConsumerKey == "" {
		return nil, errors.New("configuring OVH: applicationKey, applicationSecret and consumerKey are required")
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 60
	}
	p := &Provider{ttl: ttl}
	appKey, appSecret, consumer := cfg.ApplicationKey, cfg.ApplicationSecret, cfg.ConsumerKey
	p.api = &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
		Authorize: func(r *http.Request, body []byte) error {
			if r.URL.Path == base.Path+"/auth/time" {
				return nil
			}
			ts := strconv.FormatInt(p.now(r.Context()).Unix(), 10)
			r.Header.Set("X-Ovh-Application", appKey)
			r.Header.Set("X-Ovh-Consumer", consumer.Reveal())
			r.Header.Set("X-Ovh-Timestamp", ts)
			r.Header.Set("X-Ovh-Signature", Sign(appSecret.Reveal(), consumer.Reveal(), r.Method, r.URL.String(), string(body), ts))
			return nil
		}}
	return p, nil
}

// Sign is OVH's request signature.
func Sign(appSecret, consumerKey, method, fullURL, body, timestamp string) string {
	sum := sha1.Sum([]byte(strings.Join([]string{appSecret, consumerKey, method, fullURL, body, timestamp}, "+"))) //nolint:gosec // see import
	return "$1$" + hex.EncodeToString(sum[:])
}

// now is the server's clock, learnt once from GET /auth/time (local time
// when that fails).
func (p *Provider) now(ctx context.Context) time.Time {
	p.clockMu.Lock()
	defer p.clockMu.Unlock()
	if !p.synced {
		var server int64
		if err := p.api.Do(ctx, http.MethodGet, "/auth/time", nil, nil, &server); err == nil {
			p.delta, p.synced = time.Until(time.Unix(server, 0)), true
		}
	}
	return time.Now().Add(p.delta)
}

// errorMessage renders {"class","message"} or {"errorCode","message"}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Class     string `json:"class"`
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	if c := e.Class + e.ErrorCode; c != "" {
		return c + ": " + e.Message
	}
	return e.Message
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var zones []string
	if err := p.api.Do(ctx, http.MethodGet, "/domain/zone", nil, nil, &zones); err != nil {
		return nil, fmt.Errorf("listing zones: %w", err)
	}
	return zones, nil
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	var z struct {
		NameServers []string `json:"nameServers"`
	}
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("domain", "zone", normalize(zone)), nil, nil, &z); err != nil {
		return nil, fmt.Errorf("reading zone %s: %w", zone, err)
	}
	return z.NameServers, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

type record struct {
	ID        int64  `json:"id,omitempty"`
	FieldType string `json:"fieldType"`
	SubDomain string `json:"subDomain"`
	Target    string `json:"target"`
	TTL       int    `json:"ttl"`
}

func (p *Provider) records(ctx context.Context, zone, sub string) ([]record, error) {
	var ids []int64
	q := url.Values{"fieldType": {"TXT"}, "subDomain": {sub}}
	if err := p.api.Do(ctx, http.MethodGet, rest.Path("domain", "zone", zone, "record"), q, nil, &ids); err != nil {
		return nil, fmt.Errorf("listing TXT records: %w", err)
	}
	out := make([]record, 0, len(ids))
	for _, id := range ids {
		var r record
		if err := p.api.Do(ctx, http.MethodGet, rest.Path("domain", "zone", zone, "record", strconv.FormatInt(id, 10)), nil, nil, &r); err != nil {
			return nil, fmt.Errorf("reading record %d: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func split(zone, fqdn string) (string, string) {
	zone, name := normalize(zone), normalize(fqdn)
	if name == zone {
		return zone, ""
	}
	return zone, strings.TrimSuffix(name, "."+zone)
}

func (p *Provider) refresh(ctx context.Context, zone string) error {
	if err := p.api.Do(ctx, http.MethodPost, rest.Path("domain", "zone", zone, "refresh"), nil, nil, nil); err != nil {
		return fmt.Errorf("refreshing zone %s: %w", zone, err)
	}
	return nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	zone, sub := split(zone, fqdn)
	existing, err := p.records(ctx, zone, sub)
	if err != nil {
		return err
	}
	changed := false
	for _, v := range values {
		if slices.ContainsFunc(existing, func(r record) bool { return rest.Unquote(r.Target) == v }) {
			continue
		}
		rec := record{FieldType: "TXT", SubDomain: sub, Target: v, TTL: p.ttl}
		if err := p.api.Do(ctx, http.MethodPost, rest.Path("domain", "zone", zone, "record"), nil, rec, nil); err != nil {
			return fmt.Errorf("creating TXT record: %w", err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return p.refresh(ctx, zone)
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	zone, sub := split(zone, fqdn)
	existing, err := p.records(ctx, zone, sub)
	if err != nil {
		return err
	}
	var errs []error
	changed := false
	for _, r := range existing {
		if !slices.Contains(values, rest.Unquote(r.Target)) {
			continue
		}
		err := p.api.Do(ctx, http.MethodDelete, rest.Path("domain", "zone", zone, "record", strconv.FormatInt(r.ID, 10)), nil, nil, nil)
		if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
			errs = append(errs, fmt.Errorf("deleting TXT record %d: %w", r.ID, err))
			continue
		}
		changed = true
	}
	if changed {
		errs = append(errs, p.refresh(ctx, zone))
	}
	return errors.Join(errs...)
}
