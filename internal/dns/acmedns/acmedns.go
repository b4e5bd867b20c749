// Package acmedns holds a DNS provider for acme-dns servers
// (https://github.com/joohoi/acme-dns): each name delegates
// _acme-challenge.<name> by CNAME to its account's subdomain of the acme-dns
// zone, and the value is written with
//
//	POST {server}/update   X-Api-User, X-Api-Key   {"subdomain","txt"}
//
// acme-dns keeps the two most recent values of a subdomain and has no
// delete, so CleanUp does nothing and more than two values at once are
// refused. Accounts are given as the JSON that lego and certbot store:
// {"example.com": {"username","password","fulldomain","subdomain","server_url"}};
// with certkeeper's CNAME following, the record to write is the account's
// fulldomain, and the acme-dns zone is the provider's zone.
//
// It is native rather than lego's providers/dns/acmedns, which keeps its
// own account storage and registers accounts on its own.
package acmedns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Account is one acme-dns registration.
type Account struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	FullDomain string `json:"fulldomain"`
	SubDomain  string `json:"subdomain"`
	ServerURL  string `json:"server_url,omitempty"`
}

// Config is what a Provider needs.
type Config struct {
	// Endpoint is the acme-dns server for accounts without server_url.
	Endpoint string
	// Accounts is the accounts JSON (a secret: it holds passwords).
	Accounts   secret.String
	HTTPClient *http.Client
}

// Provider writes through acme-dns accounts. It is safe for concurrent use.
type Provider struct {
	accounts map[string]Account // by fulldomain, lowercase without dot
	clients  map[string]*rest.Client
}

var _ dns.Provider = (*Provider)(nil)

// New parses the accounts and returns a Provider. It does not contact the
// servers.
func New(cfg Config) (*Provider, error) {
	var byDomain map[string]Account
	if err := json.Unmarshal([]byte(cfg.Accounts.Reveal()), &byDomain); err != nil {
		return nil, errors.New("configuring acme-dns: accounts are not the JSON object lego and certbot store")
	}
	p := &Provider{accounts: map[string]Account{}, clients: map[string]*rest.Client{}}
	for domain, a := range byDomain {
		if a.FullDomain == "" || a.SubDomain == "" || a.Username == "" || a.Password == "" {
			return nil, fmt.Errorf("configuring acme-dns: the account of %s lacks fulldomain, subdomain, username or password", domain)
		}
		server := a.ServerURL
		if server == "" {
			server = cfg.Endpoint
		}
		if _, ok := p.clients[server]; !ok {
			base, err := rest.ParseBase(server)
			if err != nil {
				return nil, fmt.Errorf("configuring acme-dns: server of %s: %w", domain, err)
			}
			p.clients[server] = &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient, ErrorMessage: errorMessage}
		}
		a.ServerURL = server
		p.accounts[normalize(a.FullDomain)] = a
	}
	if len(p.accounts) == 0 {
		return nil, errors.New("configuring acme-dns: no account")
	}
	return p, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func errorMessage(_ int, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		return e.Error
	}
	return ""
}

// Present implements dns.Provider: one update per value.
func (p *Provider) Present(ctx context.Context, _, fqdn string, values []string) error {
	a, ok := p.accounts[normalize(fqdn)]
	if !ok {
		return fmt.Errorf("no acme-dns account has the fulldomain %s (is _acme-challenge of the name a CNAME to it?)", fqdn)
	}
	if len(values) > 2 {
		return fmt.Errorf("acme-dns keeps two TXT values per subdomain; %s needs %d", fqdn, len(values))
	}
	c := p.clients[a.ServerURL]
	for _, v := range values {
		body := mustJSON(map[string]string{"subdomain": a.SubDomain, "txt": v})
		auth := *c
		auth.Authorize = func(r *http.Request, _ []byte) error {
			r.Header.Set("X-Api-User", a.Username)
			r.Header.Set("X-Api-Key", a.Password)
			return nil
		}
		if _, err := auth.Raw(ctx, http.MethodPost, "/update", nil, body); err != nil {
			return fmt.Errorf("updating acme-dns subdomain %s: %w", a.SubDomain, err)
		}
	}
	return nil
}

// CleanUp implements dns.Provider: acme-dns has no delete; the values are
// replaced by the next ones.
func (p *Provider) CleanUp(context.Context, string, string, []string) error { return nil }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a map of strings always encodes
	}
	return b
}
