// Package httpreq holds a DNS provider for any HTTP endpoint that follows
// lego's httpreq contract (https://go-acme.github.io/lego/dns/httpreq/),
// the escape hatch for DNS services without a provider of their own:
//
//	POST {endpoint}/present   {"fqdn":"_acme-challenge.example.com.","value":"…"}
//	POST {endpoint}/cleanup   the same
//
// one request per value, optionally with HTTP basic authentication. The
// endpoint cannot list zones: configure them.
//
// It is a native client rather than lego's providers/dns/httpreq, which
// follows CNAMEs through a process-wide resolver unless the process
// environment says not to; certkeeper does that itself. lego's RAW mode
// (domain, token and key authorization) is not offered.
package httpreq

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Config is what a Provider needs.
type Config struct {
	Endpoint   string
	Username   string
	Password   secret.String
	HTTPClient *http.Client
}

// Provider is one httpreq endpoint. It is safe for concurrent use.
type Provider struct{ api *rest.Client }

var _ dns.Provider = (*Provider)(nil)

// New checks cfg and returns a Provider. It does not contact the endpoint.
func New(cfg Config) (*Provider, error) {
	base, err := rest.ParseBase(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("configuring httpreq: endpoint: %w", err)
	}
	c := &rest.Client{BaseURL: base, HTTP: cfg.HTTPClient}
	if cfg.Username != "" {
		user, pass := cfg.Username, cfg.Password
		c.Authorize = func(r *http.Request, _ []byte) error { r.SetBasicAuth(user, pass.Reveal()); return nil }
	}
	return &Provider{api: c}, nil
}

type message struct {
	FQDN  string `json:"fqdn"`
	Value string `json:"value"`
}

// Present implements dns.Provider: POST /present per value.
func (p *Provider) Present(ctx context.Context, _, fqdn string, values []string) error {
	return p.send(ctx, "/present", fqdn, values)
}

// CleanUp implements dns.Provider: POST /cleanup per value.
func (p *Provider) CleanUp(ctx context.Context, _, fqdn string, values []string) error {
	return p.send(ctx, "/cleanup", fqdn, values)
}

func (p *Provider) send(ctx context.Context, path, fqdn string, values []string) error {
	name := strings.ToLower(strings.TrimSuffix(fqdn, ".")) + "."
	for _, v := range values {
		if _, err := p.api.Raw(ctx, http.MethodPost, path, nil, mustJSON(message{FQDN: name, Value: v})); err != nil {
			return fmt.Errorf("%s TXT %s: %w", strings.TrimPrefix(path, "/"), fqdn, err)
		}
	}
	return nil
}
