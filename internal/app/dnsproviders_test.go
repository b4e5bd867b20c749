package app

import (
	"slices"
	"testing"

	"github.com/certkeeper/certkeeper/internal/config"
)

// TestProviderTable checks that the config's types and the constructors
// are the same list, and that several instances of one type coexist.
func TestProviderTable(t *testing.T) {
	t.Parallel()
	for _, typ := range config.ProviderTypes {
		if _, ok := providerConstructors[typ]; !ok {
			t.Errorf("config type %q has no constructor", typ)
		}
	}
	for typ := range providerConstructors {
		if !slices.Contains(config.ProviderTypes, typ) {
			t.Errorf("constructor for %q, which the config does not accept", typ)
		}
	}
	named, err := buildProviders(t.Context(), config.DNS{Providers: []config.DNSProvider{
		{Name: "one", Type: config.ProviderCloudflare, TTL: 60, Settings: &config.Cloudflare{APIToken: "a"}},
		{Name: "two", Type: config.ProviderCloudflare, TTL: 60, Settings: &config.Cloudflare{APIToken: "b"}},
		{Name: "aws", Type: config.ProviderRoute53, TTL: 60, Settings: &config.Route53{AccessKeyID: "k", SecretAccessKey: "s"}},
		{Name: "az", Type: config.ProviderAzureDNS, TTL: 60, Settings: &config.AzureDNS{SubscriptionID: "s", TenantID: "t", ClientID: "c", ClientSecret: "x"}},
		{Name: "pdns", Type: config.ProviderPowerDNS, TTL: 60, Settings: &config.PowerDNS{APIURL: "http://127.0.0.1:1", APIKey: "k"}},
	}})
	if err != nil || len(named) != 5 || named[0].Provider == named[1].Provider {
		t.Fatalf("buildProviders = %v, %v", named, err)
	}
	_, err = buildProviders(t.Context(), config.DNS{Providers: []config.DNSProvider{
		{Name: "bad", Type: config.ProviderPowerDNS, TTL: 60, Settings: &config.PowerDNS{APIURL: "not a url", APIKey: "k"}},
	}})
	if err == nil {
		t.Error("a PowerDNS provider without a usable URL was built")
	}
}
