// Package googledns holds a DNS provider for Google Cloud DNS's API v1
// (https://cloud.google.com/dns/docs/reference/rest/v1):
//
//	GET  /dns/v1/projects/{project}/managedZones?pageToken=              zones, with nameServers
//	GET  /dns/v1/projects/{project}/managedZones/{zone}/rrsets?name=&type=TXT
//	POST /dns/v1/projects/{project}/managedZones/{zone}/changes          {"additions","deletions"}
//
// with an OAuth 2 access token (scope ndev.clouddns.readwrite) from a
// service account key, or from Application Default Credentials (GKE
// workload identity, the metadata server) when no key is configured.
//
// It is a native client rather than lego's providers/dns/gcloud, which
// finds the zone by SOA queries through a process-wide resolver and follows
// CNAMEs unless the process environment says not to; certkeeper does both
// itself, and lists zones, which lego does not.
package googledns

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
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is Cloud DNS's API; Scope the OAuth scope it needs.
const (
	DefaultEndpoint = "https://dns.googleapis.com/dns/v1"
	Scope           = "https://www.googleapis.com/auth/ndev.clouddns.readwrite"
)

// zoneCacheTTL is how long the managed zone list is reused.
const zoneCacheTTL = time.Minute

// Config is what a Provider needs.
type Config struct {
	Project string
	// ServiceAccountKey is a service account's JSON key; empty means
	// Application Default Credentials.
	ServiceAccountKey secret.String
	// Endpoint replaces DefaultEndpoint.
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one Google Cloud project's Cloud DNS. It is safe for
// concurrent use.
type Provider struct {
	api     *rest.Client
	project string
	ttl     int

	mu       sync.Mutex // serializes RRset changes, guards the cache
	zones    []managedZone
	cachedAt time.Time
}

var (
	_ dns.Provider           = (*Provider)(nil)
	_ dns.ZoneLister         = (*Provider)(nil)
	_ dns.NameServerReporter = (*Provider)(nil)
)

// New builds a Provider. It does not contact the API; with no key,
// finding Application Default Credentials may read the environment and
// well-known files, as Google's libraries do.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Project == "" {
		return nil, errors.New("configuring Google Cloud DNS: project is required")
	}
	base, err := rest.ParseBase(cmp.Or(cfg.Endpoint, DefaultEndpoint))
	if err != nil {
		return nil, fmt.Errorf("configuring Google Cloud DNS: endpoint: %w", err)
	}
	// The token source outlives ctx: it refreshes tokens for as long as
	// the provider is used.
	tctx := context.WithoutCancel(ctx)
	if cfg.HTTPClient != nil {
		tctx = context.WithValue(tctx, oauth2.HTTPClient, cfg.HTTPClient)
	}
	var ts oauth2.TokenSource
	if cfg.ServiceAccountKey != "" {
		jc, err := google.JWTConfigFromJSON([]byte(cfg.ServiceAccountKey.Reveal()), Scope)
		if err != nil {
			return nil, errors.New("configuring Google Cloud DNS: serviceAccountKey is not a service account JSON key")
		}
		ts = jc.TokenSource(tctx)
	} else {
		ts, err = google.DefaultTokenSource(tctx, Scope)
		if err != nil {
			return nil, fmt.Errorf("configuring Google Cloud DNS: finding default credentials: %w", err)
		}
	}
	ts = oauth2.ReuseTokenSource(nil, ts)
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 60
	}
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: func(r *http.Request, _ []byte) error {
				tok, err := ts.Token()
				if err != nil {
					return fmt.Errorf("getting an access token: %w", err)
				}
				r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				return nil
			}},
		project: cfg.Project, ttl: ttl,
	}, nil
}

// errorMessage renders {"error":{"code","message","status"}}.
func errorMessage(_ int, body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	if e.Error.Status != "" {
		return e.Error.Status + ": " + e.Error.Message
	}
	return e.Error.Message
}

type managedZone struct {
	Name        string   `json:"name"`
	DNSName     string   `json:"dnsName"`
	NameServers []string `json:"nameServers"`
	Visibility  string   `json:"visibility"`
}

type rrset struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	TTL     int      `json:"ttl"`
	RRDatas []string `json:"rrdatas"`
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// listZones returns the public managed zones, page after page.
func (p *Provider) listZones(ctx context.Context) ([]managedZone, error) {
	var all []managedZone
	token := ""
	for {
		q := url.Values{}
		if token != "" {
			q.Set("pageToken", token)
		}
		var out struct {
			ManagedZones  []managedZone `json:"managedZones"`
			NextPageToken string        `json:"nextPageToken"`
		}
		if err := p.api.Do(ctx, http.MethodGet, rest.Path("projects", p.project, "managedZones"), q, nil, &out); err != nil {
			return nil, fmt.Errorf("listing managed zones: %w", err)
		}
		for _, z := range out.ManagedZones {
			if z.Visibility == "" || z.Visibility == "public" {
				all = append(all, z)
			}
		}
		if out.NextPageToken == "" {
			break
		}
		token = out.NextPageToken
	}
	p.mu.Lock()
	p.zones, p.cachedAt = all, time.Now()
	p.mu.Unlock()
	return all, nil
}

// Zones implements dns.ZoneLister: the public managed zones.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	zones, err := p.listZones(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(zones))
	for i, z := range zones {
		names[i] = z.DNSName
	}
	return names, nil
}

// zone returns the public managed zone whose DNS name is name.
func (p *Provider) zone(ctx context.Context, name string) (managedZone, error) {
	name = normalize(name)
	p.mu.Lock()
	zones, fresh := p.zones, time.Since(p.cachedAt) < zoneCacheTTL
	p.mu.Unlock()
	find := func() (managedZone, bool) {
		for _, z := range zones {
			if normalize(z.DNSName) == name {
				return z, true
			}
		}
		return managedZone{}, false
	}
	if z, ok := find(); ok && fresh {
		return z, nil
	}
	var err error
	if zones, err = p.listZones(ctx); err != nil {
		return managedZone{}, err
	}
	if z, ok := find(); ok {
		return z, nil
	}
	return managedZone{}, fmt.Errorf("no public managed zone for %s in project %s", name, p.project)
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	z, err := p.zone(ctx, zone)
	if err != nil {
		return nil, err
	}
	return z.NameServers, nil
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

// change replaces the TXT RRset at fqdn in one Cloud DNS change: the
// current set as a deletion, the edited one as an addition.
func (p *Provider) change(ctx context.Context, zone, fqdn string, edit func([]string) []string) error {
	z, err := p.zone(ctx, zone)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	name := normalize(fqdn) + "."
	zonePath := rest.Path("projects", p.project, "managedZones", z.Name)
	var list struct {
		RRsets []rrset `json:"rrsets"`
	}
	if err := p.api.Do(ctx, http.MethodGet, zonePath+"/rrsets", url.Values{"name": {name}, "type": {"TXT"}}, nil, &list); err != nil {
		return fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	var old *rrset
	var cur []string
	for i, s := range list.RRsets {
		if normalize(s.Name)+"." == name && s.Type == "TXT" {
			old = &list.RRsets[i]
			for _, d := range s.RRDatas {
				cur = append(cur, rest.Unquote(d))
			}
		}
	}
	before := slices.Clone(cur)
	next := edit(cur)
	if slices.Equal(before, next) {
		return nil
	}
	body := struct {
		Additions []rrset `json:"additions,omitempty"`
		Deletions []rrset `json:"deletions,omitempty"`
	}{}
	if old != nil {
		body.Deletions = []rrset{*old}
	}
	if len(next) > 0 {
		add := rrset{Name: name, Type: "TXT", TTL: p.ttl}
		for _, v := range next {
			add.RRDatas = append(add.RRDatas, rest.Quote(v))
		}
		body.Additions = []rrset{add}
	}
	if err := p.api.Do(ctx, http.MethodPost, zonePath+"/changes", nil, body, nil); err != nil {
		return fmt.Errorf("writing TXT %s: %w", fqdn, err)
	}
	return nil
}
