package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/acmedns"
	"github.com/certkeeper/certkeeper/internal/dns/akamai"
	"github.com/certkeeper/certkeeper/internal/dns/azuredns"
	"github.com/certkeeper/certkeeper/internal/dns/cloudflare"
	"github.com/certkeeper/certkeeper/internal/dns/customdns"
	"github.com/certkeeper/certkeeper/internal/dns/desec"
	"github.com/certkeeper/certkeeper/internal/dns/digitalocean"
	"github.com/certkeeper/certkeeper/internal/dns/dnsmadeeasy"
	"github.com/certkeeper/certkeeper/internal/dns/duckdns"
	"github.com/certkeeper/certkeeper/internal/dns/exec"
	"github.com/certkeeper/certkeeper/internal/dns/gandi"
	"github.com/certkeeper/certkeeper/internal/dns/godaddy"
	"github.com/certkeeper/certkeeper/internal/dns/googledns"
	"github.com/certkeeper/certkeeper/internal/dns/hetzner"
	"github.com/certkeeper/certkeeper/internal/dns/httpreq"
	"github.com/certkeeper/certkeeper/internal/dns/ionos"
	"github.com/certkeeper/certkeeper/internal/dns/linode"
	"github.com/certkeeper/certkeeper/internal/dns/namecheap"
	"github.com/certkeeper/certkeeper/internal/dns/ovh"
	"github.com/certkeeper/certkeeper/internal/dns/porkbun"
	"github.com/certkeeper/certkeeper/internal/dns/powerdns"
	"github.com/certkeeper/certkeeper/internal/dns/rfc2136"
	"github.com/certkeeper/certkeeper/internal/dns/route53"
	"github.com/certkeeper/certkeeper/internal/dns/transip"
)

// providerConstructors is the list of DNS provider types certkeeper can use:
// one constructor per config type, each built from its own typed block so
// that several instances of one type coexist.
var providerConstructors = map[string]func(context.Context, config.DNSProvider) (dns.Provider, error){
	config.ProviderRFC2136: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.RFC2136
		return rfc2136.New(rfc2136.Config{
			Nameserver: c.Nameserver, TSIGKeyName: c.TSIGKeyName, TSIGAlgorithm: c.TSIGAlgorithm,
			TSIGSecret: c.TSIGSecret, TTL: p.TTL,
		})
	},
	config.ProviderCustomDNS: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.CustomDNS
		return customdns.New(customdns.Config{
			Endpoint: c.Endpoint, APIKey: c.APIKey, APIKeyHeaderName: c.APIKeyHeaderName, TTL: p.TTL,
		})
	},
	config.ProviderAzureDNS:        azureConstructor(false),
	config.ProviderAzurePrivateDNS: azureConstructor(true),
	config.ProviderCloudflare: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Cloudflare)
		return cloudflare.New(cloudflare.Config{
			APIToken: c.APIToken, ZoneAPIToken: c.ZoneAPIToken, Email: c.Email, APIKey: c.APIKey,
			Endpoint: c.Endpoint, TTL: p.TTL,
		})
	},
	config.ProviderPowerDNS: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.PowerDNS)
		return powerdns.New(powerdns.Config{APIURL: c.APIURL, APIKey: c.APIKey, ServerID: c.ServerID, TTL: p.TTL})
	},
	config.ProviderDigitalOcean: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.DigitalOcean)
		return digitalocean.New(digitalocean.Config{APIToken: c.APIToken, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderGoDaddy: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.GoDaddy)
		return godaddy.New(godaddy.Config{APIKey: c.APIKey, APISecret: c.APISecret, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderRoute53: func(ctx context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Route53)
		return route53.New(ctx, route53.Config{
			AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
			Region: c.Region, RoleARN: c.RoleARN, HostedZoneID: c.HostedZoneID, Endpoint: c.Endpoint, TTL: p.TTL,
		})
	},
	config.ProviderGoogleCloudDNS: func(ctx context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.GoogleCloudDNS)
		return googledns.New(ctx, googledns.Config{Project: c.Project, ServiceAccountKey: c.ServiceAccountKey, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderHTTPReq: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.HTTPReq)
		return httpreq.New(httpreq.Config{Endpoint: c.Endpoint, Username: c.Username, Password: c.Password})
	},
	config.ProviderExec: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Exec)
		return exec.New(exec.Config{Command: c.Command, Args: c.Args, Timeout: c.Timeout})
	},
	config.ProviderACMEDNS: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.ACMEDNS)
		return acmedns.New(acmedns.Config{Endpoint: c.Endpoint, Accounts: c.Accounts})
	},
	config.ProviderDuckDNS: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.DuckDNS)
		return duckdns.New(duckdns.Config{Token: c.Token, Endpoint: c.Endpoint})
	},
	config.ProviderGandi: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Gandi)
		return gandi.New(gandi.Config{PersonalAccessToken: c.PersonalAccessToken, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderDeSEC: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.DeSEC)
		return desec.New(desec.Config{APIToken: c.APIToken, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderPorkbun: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Porkbun)
		return porkbun.New(porkbun.Config{APIKey: c.APIKey, SecretAPIKey: c.SecretAPIKey, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderLinode: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Linode)
		return linode.New(linode.Config{APIToken: c.APIToken, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderIONOS: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.IONOS)
		return ionos.New(ionos.Config{APIKey: c.APIKey, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderDNSMadeEasy: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.DNSMadeEasy)
		endpoint := c.Endpoint
		if endpoint == "" && c.Sandbox {
			endpoint = dnsmadeeasy.SandboxEndpoint
		}
		return dnsmadeeasy.New(dnsmadeeasy.Config{APIKey: c.APIKey, APISecret: c.APISecret, Endpoint: endpoint, TTL: p.TTL})
	},
	config.ProviderOVH: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.OVH)
		return ovh.New(ovh.Config{Endpoint: c.Endpoint, ApplicationKey: c.ApplicationKey, ApplicationSecret: c.ApplicationSecret,
			ConsumerKey: c.ConsumerKey, TTL: p.TTL})
	},
	config.ProviderHetzner: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Hetzner)
		return hetzner.New(hetzner.Config{APIToken: c.APIToken, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderTransIP: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.TransIP)
		return transip.New(transip.Config{Login: c.Login, PrivateKey: c.PrivateKey, Endpoint: c.Endpoint, TTL: p.TTL})
	},
	config.ProviderNamecheap: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Namecheap)
		endpoint := c.Endpoint
		if endpoint == "" && c.Sandbox {
			endpoint = namecheap.SandboxEndpoint
		}
		return namecheap.New(namecheap.Config{APIUser: c.APIUser, APIKey: c.APIKey, UserName: c.UserName, ClientIP: c.ClientIP,
			Endpoint: endpoint, TTL: p.TTL})
	},
	config.ProviderAkamai: func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.Akamai)
		return akamai.New(akamai.Config{Host: c.Host, ClientToken: c.ClientToken, ClientSecret: c.ClientSecret,
			AccessToken: c.AccessToken, AccountSwitchKey: c.AccountSwitchKey, Endpoint: c.Endpoint, TTL: p.TTL})
	},
}

// azureConstructor builds Azure DNS public or private zone providers.
func azureConstructor(private bool) func(context.Context, config.DNSProvider) (dns.Provider, error) {
	return func(_ context.Context, p config.DNSProvider) (dns.Provider, error) {
		c := p.Settings.(*config.AzureDNS)
		return azuredns.New(azuredns.Config{
			Private: private, SubscriptionID: c.SubscriptionID, ResourceGroup: c.ResourceGroup,
			TenantID: c.TenantID, ClientID: c.ClientID, ClientSecret: c.ClientSecret, FederatedTokenFile: c.FederatedTokenFile,
			Cloud: c.Cloud, ResourceManagerEndpoint: c.ResourceManagerEndpoint, AuthorityHost: c.AuthorityHost, TTL: p.TTL,
		})
	}
}

// buildProviders turns the configured providers into named instances,
// reporting every one that cannot be built.
func buildProviders(ctx context.Context, c config.DNS) ([]dns.Named, error) {
	var (
		out  []dns.Named
		errs []error
	)
	for i, p := range c.Providers {
		build, ok := providerConstructors[p.Type]
		if !ok {
			errs = append(errs, fmt.Errorf("dns.providers[%d]: unsupported type %q", i, p.Type))
			continue
		}
		prov, err := build(ctx, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("dns.providers[%d] (%s): %w", i, p.Name, err))
			continue
		}
		out = append(out, dns.Named{
			Name: p.Name, Provider: prov, Zones: p.Zones, TTL: p.TTL, PropagationTimeout: p.PropagationTimeout,
		})
	}
	return out, errors.Join(errs...)
}
