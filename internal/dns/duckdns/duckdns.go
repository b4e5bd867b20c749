// Package duckdns holds a DNS provider for Duck DNS
// (https://www.duckdns.org/spec.jsp):
//
//	GET {endpoint}/update?domains=<sub>&token=<token>&txt=<value>
//	GET {endpoint}/update?domains=<sub>&token=<token>&txt=&clear=true
//
// answering "OK" or "KO". Duck DNS holds one TXT value per domain, so a
// name and its wildcard cannot be validated in one order. Zones are the
// configured <sub>.duckdns.org names.
//
// It is native rather than lego's providers/dns/duckdns, which follows
// CNAMEs through a process-wide resolver unless the process environment
// says not to; certkeeper does that itself.
package duckdns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultEndpoint is Duck DNS's API.
const DefaultEndpoint = "https://www.duckdns.org"

// Config is what a Provider needs.
type Config struct {
	Token secret.String
	// Endpoint replaces DefaultEndpoint.
	Endpoint   string
	HTTPClient *http.Client
}

// Provider is one Duck DNS account. It is safe for concurrent use.
type Provider struct {
	api   *rest.Client
	token secret.String
}

var _ dns.Provider = (*Provider)(nil)

// New checks cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	base, err := rest.ParseBase(cmp.Or(cfg.Endpoint, DefaultEndpoint))
	if err != nil {
		return nil, fmt.Errorf("configuring Duck DNS: endpoint: %w", err)
	}
	if cfg.Token == "" {
		return nil, errors.New("configuring Duck DNS: token is required")
	}
	return &Provider{api: &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient}, token: cfg.Token}, nil
}

// subdomain is the Duck DNS domain of fqdn: the label before duckdns.org.
func subdomain(fqdn string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(fqdn), ".")
	rest, ok := strings.CutSuffix(name, ".duckdns.org")
	if !ok || rest == "" {
		return "", fmt.Errorf("%s is not under duckdns.org", fqdn)
	}
	labels := strings.Split(rest, ".")
	return labels[len(labels)-1], nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, _, fqdn string, values []string) error {
	if len(values) > 1 {
		return fmt.Errorf("Duck DNS holds one TXT value per domain; %s needs %d (a name and its wildcard cannot share an order)", fqdn, len(values))
	}
	return p.update(ctx, fqdn, url.Values{"txt": {values[0]}})
}

// CleanUp implements dns.Provider: the domain's TXT value is cleared.
func (p *Provider) CleanUp(ctx context.Context, _, fqdn string, _ []string) error {
	return p.update(ctx, fqdn, url.Values{"txt": {""}, "clear": {"true"}})
}

func (p *Provider) update(ctx context.Context, fqdn string, q url.Values) error {
	sub, err := subdomain(fqdn)
	if err != nil {
		return err
	}
	q.Set("domains", sub)
	q.Set("token", p.token.Reveal())
	body, err := p.api.Raw(ctx, http.MethodGet, "/update", q, nil)
	if err != nil {
		return fmt.Errorf("updating Duck DNS domain %s: %w", sub, err)
	}
	if answer := strings.TrimSpace(string(body)); !strings.HasPrefix(answer, "OK") {
		return fmt.Errorf("updating Duck DNS domain %s: Duck DNS answered %q", sub, answer)
	}
	return nil
}
