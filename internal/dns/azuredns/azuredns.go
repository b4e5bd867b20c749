// Package azuredns holds a DNS provider for Azure DNS, public zones
// (Microsoft.Network/dnsZones, api-version 2018-05-01) and private zones
// (Microsoft.Network/privateDnsZones, api-version 2024-06-01), through the
// Azure Resource Manager REST API
// (https://learn.microsoft.com/rest/api/dns/ and /rest/api/privatedns/):
//
//	GET    {arm}/subscriptions/{sub}[/resourceGroups/{rg}]/providers/Microsoft.Network/dnsZones   zones, paged by nextLink
//	GET    {zone id}/TXT/{relative name}                                                          one record set
//	PUT    {zone id}/TXT/{relative name}   {"properties":{"TTL","TXTRecords":[{"value":[…]}]}}
//	DELETE {zone id}/TXT/{relative name}
//
// with a bearer token from azidentity: a client secret, a workload identity
// (federated token file) or the managed identity.
//
// lego's providers/dns/azuredns cannot be built here (one of its
// dependencies is refused by the module proxy), so this is a native client.
package azuredns

import (
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

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// API versions of the two resource providers.
const (
	publicAPIVersion  = "2018-05-01"
	privateAPIVersion = "2024-06-01"
)

// zoneCacheTTL is how long the zone list (for zone ids) is reused.
const zoneCacheTTL = time.Minute

// Clouds by configuration name.
var Clouds = map[string]cloud.Configuration{
	"AzurePublicCloud":  cloud.AzurePublic,
	"AzureChinaCloud":   cloud.AzureChina,
	"AzureUSGovernment": cloud.AzureGovernment,
}

// Config is what a Provider needs.
type Config struct {
	// Private selects private DNS zones instead of public ones.
	Private        bool
	SubscriptionID string
	// ResourceGroup restricts the zones to one resource group.
	ResourceGroup string
	TenantID      string
	ClientID      string
	// ClientSecret selects a client secret credential; FederatedTokenFile
	// a workload identity; neither, the managed identity (ClientID picks a
	// user-assigned one).
	ClientSecret       secret.String
	FederatedTokenFile string
	// Cloud is a key of Clouds; default AzurePublicCloud.
	Cloud string
	// ResourceManagerEndpoint and AuthorityHost replace the cloud's.
	ResourceManagerEndpoint string
	AuthorityHost           string
	TTL                     int
	HTTPClient              *http.Client
}

// Provider is one subscription's Azure DNS (public or private) zones. It is
// safe for concurrent use.
type Provider struct {
	api        *rest.Client
	private    bool
	sub, group string

	mu       sync.Mutex // serializes record set changes, guards the cache
	zones    []zone
	cachedAt time.Time
	ttl      int
}

var (
	_ dns.Provider           = (*Provider)(nil)
	_ dns.ZoneLister         = (*Provider)(nil)
	_ dns.NameServerReporter = (*Provider)(nil)
)

// New builds a Provider and its credential. It does not contact Azure.
func New(cfg Config) (*Provider, error) {
	if cfg.SubscriptionID == "" {
		return nil, errors.New("configuring Azure DNS: subscriptionId is required")
	}
	name := cfg.Cloud
	if name == "" {
		name = "AzurePublicCloud"
	}
	cc, ok := Clouds[name]
	if !ok {
		return nil, fmt.Errorf("configuring Azure DNS: unknown cloud %q", cfg.Cloud)
	}
	arm := cc.Services[cloud.ResourceManager]
	if cfg.ResourceManagerEndpoint != "" {
		arm.Endpoint = cfg.ResourceManagerEndpoint
	}
	if cfg.AuthorityHost != "" {
		cc.ActiveDirectoryAuthorityHost = cfg.AuthorityHost
	}
	base, err := rest.ParseBase(arm.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("configuring Azure DNS: resource manager endpoint: %w", err)
	}
	opts := azcore.ClientOptions{Cloud: cc}
	if cfg.HTTPClient != nil {
		opts.Transport = cfg.HTTPClient
	}
	// Instance discovery asks the public cloud about the authority; a
	// configured authority is taken as it is.
	custom := cfg.AuthorityHost != ""
	var cred azcore.TokenCredential
	switch {
	case cfg.ClientSecret != "":
		cred, err = azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: custom})
	case cfg.FederatedTokenFile != "":
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: cfg.TenantID, ClientID: cfg.ClientID, TokenFilePath: cfg.FederatedTokenFile,
			DisableInstanceDiscovery: custom})
	default:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if cfg.ClientID != "" {
			mo.ID = azidentity.ClientID(cfg.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(mo)
	}
	if err != nil {
		return nil, fmt.Errorf("configuring Azure DNS credentials: %w", err)
	}
	scope := strings.TrimSuffix(arm.Audience, "/") + "/.default"
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 60
	}
	return &Provider{
		api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage,
			Authorize: func(r *http.Request, _ []byte) error {
				tok, err := cred.GetToken(r.Context(), policy.TokenRequestOptions{Scopes: []string{scope}})
				if err != nil {
					return fmt.Errorf("getting an Azure access token: %w", err)
				}
				r.Header.Set("Authorization", "Bearer "+tok.Token)
				return nil
			}},
		private: cfg.Private, sub: cfg.SubscriptionID, group: cfg.ResourceGroup, ttl: ttl,
	}, nil
}

// errorMessage renders ARM's {"error":{"code","message"}}.
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

type zone struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		NameServers []string `json:"nameServers"`
	} `json:"properties"`
}

func (p *Provider) resourceType() string {
	if p.private {
		return "privateDnsZones"
	}
	return "dnsZones"
}

func (p *Provider) apiVersion() url.Values {
	if p.private {
		return url.Values{"api-version": {privateAPIVersion}}
	}
	return url.Values{"api-version": {publicAPIVersion}}
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// listZones returns every zone, following nextLink.
func (p *Provider) listZones(ctx context.Context) ([]zone, error) {
	segments := []string{"subscriptions", p.sub}
	if p.group != "" {
		segments = append(segments, "resourceGroups", p.group)
	}
	segments = append(segments, "providers", "Microsoft.Network", p.resourceType())
	path, query := rest.Path(segments...), p.apiVersion()
	var all []zone
	for {
		var page struct {
			Value    []zone `json:"value"`
			NextLink string `json:"nextLink"`
		}
		if err := p.api.Do(ctx, http.MethodGet, path, query, nil, &page); err != nil {
			return nil, fmt.Errorf("listing zones: %w", err)
		}
		all = append(all, page.Value...)
		if page.NextLink == "" {
			break
		}
		next, err := url.Parse(page.NextLink)
		if err != nil || !strings.HasPrefix(next.EscapedPath(), p.api.BaseURL.EscapedPath()) {
			return nil, fmt.Errorf("listing zones: unusable nextLink %q", page.NextLink)
		}
		path, query = strings.TrimPrefix(next.EscapedPath(), p.api.BaseURL.EscapedPath()), next.Query()
	}
	p.mu.Lock()
	p.zones, p.cachedAt = all, time.Now()
	p.mu.Unlock()
	return all, nil
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	zones, err := p.listZones(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(zones))
	for i, z := range zones {
		names[i] = z.Name
	}
	return names, nil
}

func (p *Provider) zone(ctx context.Context, name string) (zone, error) {
	name = normalize(name)
	p.mu.Lock()
	zones, fresh := p.zones, time.Since(p.cachedAt) < zoneCacheTTL
	p.mu.Unlock()
	find := func(zones []zone) (zone, bool) {
		for _, z := range zones {
			if normalize(z.Name) == name {
				return z, true
			}
		}
		return zone{}, false
	}
	if z, ok := find(zones); ok && fresh {
		return z, nil
	}
	zones, err := p.listZones(ctx)
	if err != nil {
		return zone{}, err
	}
	if z, ok := find(zones); ok {
		return z, nil
	}
	return zone{}, fmt.Errorf("zone %s is not in subscription %s", name, p.sub)
}

// NameServers implements dns.NameServerReporter; private zones have none.
func (p *Provider) NameServers(ctx context.Context, name string) ([]string, error) {
	if p.private {
		return nil, nil
	}
	z, err := p.zone(ctx, name)
	if err != nil {
		return nil, err
	}
	return z.Properties.NameServers, nil
}

// recordPath is the path of the TXT record set at fqdn in z.
func recordPath(z zone, fqdn string) string {
	zname, name := normalize(z.Name), normalize(fqdn)
	rel := "@"
	if name != zname {
		rel = strings.TrimSuffix(name, "."+zname)
	}
	return z.ID + rest.Path("TXT", rel)
}

// txtRecords is a record set's records, under the key each API uses.
type recordSet struct {
	Properties struct {
		TTL        int         `json:"TTL,omitempty"`
		TXTRecords []txtRecord `json:"TXTRecords,omitempty"`
		PrivateTTL int         `json:"ttl,omitempty"`
		PrivateTXT []txtRecord `json:"txtRecords,omitempty"`
	} `json:"properties"`
}

type txtRecord struct {
	Value []string `json:"value"`
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zoneName, fqdn string, values []string) error {
	return p.change(ctx, zoneName, fqdn, func(cur []string) []string {
		for _, v := range values {
			if !slices.Contains(cur, v) {
				cur = append(cur, v)
			}
		}
		return cur
	})
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zoneName, fqdn string, values []string) error {
	return p.change(ctx, zoneName, fqdn, func(cur []string) []string {
		return slices.DeleteFunc(cur, func(v string) bool { return slices.Contains(values, v) })
	})
}

func (p *Provider) change(ctx context.Context, zoneName, fqdn string, edit func([]string) []string) error {
	z, err := p.zone(ctx, zoneName)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	path := recordPath(z, fqdn)
	var set recordSet
	err = p.api.Do(ctx, http.MethodGet, path, p.apiVersion(), nil, &set)
	if err != nil && !rest.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	var cur []string
	for _, r := range slices.Concat(set.Properties.TXTRecords, set.Properties.PrivateTXT) {
		cur = append(cur, strings.Join(r.Value, ""))
	}
	before := slices.Clone(cur)
	next := edit(cur)
	switch {
	case slices.Equal(before, next):
		return nil
	case len(next) == 0:
		if err := p.api.Do(ctx, http.MethodDelete, path, p.apiVersion(), nil, nil); err != nil && !rest.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("deleting TXT %s: %w", fqdn, err)
		}
		return nil
	}
	var out recordSet
	records := make([]txtRecord, len(next))
	for i, v := range next {
		records[i] = txtRecord{Value: []string{v}}
	}
	if p.private {
		out.Properties.PrivateTTL, out.Properties.PrivateTXT = p.ttl, records
	} else {
		out.Properties.TTL, out.Properties.TXTRecords = p.ttl, records
	}
	if err := p.api.Do(ctx, http.MethodPut, path, p.apiVersion(), out, nil); err != nil {
		return fmt.Errorf("writing TXT %s: %w", fqdn, err)
	}
	return nil
}
