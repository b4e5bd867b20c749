package config

import (
	"net/netip"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// TransIP is a TransIP account with an API key pair.
type TransIP struct {
	Login          string        `yaml:"login"`
	PrivateKey     secret.String `yaml:"privateKey"`
	PrivateKeyFile string        `yaml:"privateKeyFile"`
	// Endpoint replaces https://api.transip.nl.
	Endpoint string `yaml:"endpoint"`
}

func (c *TransIP) validate(p *problems, path string) {
	require(p, path, "login", c.Login)
	require(p, path, "privateKey", c.PrivateKey.Reveal())
	checkEndpoint(p, path, "endpoint", c.Endpoint)
}

// Namecheap is a Namecheap account with API access enabled for ClientIP.
type Namecheap struct {
	APIUser    string        `yaml:"apiUser"`
	APIKey     secret.String `yaml:"apiKey"`
	APIKeyFile string        `yaml:"apiKeyFile"`
	// UserName is the account acted for; default APIUser.
	UserName string `yaml:"userName"`
	// ClientIP is the allow-listed IPv4 address requests come from.
	ClientIP string `yaml:"clientIp"`
	// Sandbox selects https://api.sandbox.namecheap.com.
	Sandbox  bool   `yaml:"sandbox"`
	Endpoint string `yaml:"endpoint"`
}

func (c *Namecheap) validate(p *problems, path string) {
	require(p, path, "apiUser", c.APIUser)
	require(p, path, "apiKey", c.APIKey.Reveal())
	if require(p, path, "clientIp", c.ClientIP) {
		if a, err := netip.ParseAddr(c.ClientIP); err != nil || !a.Is4() {
			p.add(path+".clientIp", "%q is not an IPv4 address", c.ClientIP)
		}
	}
	checkEndpoint(p, path, "endpoint", c.Endpoint)
}

// Akamai is an Akamai Edge DNS API client (EdgeGrid credentials, as in
// an .edgerc section).
type Akamai struct {
	// Host is the client's API host, such as akab-….luna.akamaiapis.net.
	Host             string        `yaml:"host"`
	ClientToken      string        `yaml:"clientToken"`
	ClientSecret     secret.String `yaml:"clientSecret"`
	ClientSecretFile string        `yaml:"clientSecretFile"`
	AccessToken      secret.String `yaml:"accessToken"`
	AccessTokenFile  string        `yaml:"accessTokenFile"`
	// AccountSwitchKey acts for another account (partners).
	AccountSwitchKey string `yaml:"accountSwitchKey"`
	// Endpoint replaces https://{host}.
	Endpoint string `yaml:"endpoint"`
}

func (c *Akamai) validate(p *problems, path string) {
	if c.Endpoint == "" {
		require(p, path, "host", c.Host)
	}
	require(p, path, "clientToken", c.ClientToken)
	require(p, path, "clientSecret", c.ClientSecret.Reveal())
	require(p, path, "accessToken", c.AccessToken.Reveal())
	checkEndpoint(p, path, "endpoint", c.Endpoint)
}
