package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/web"
)

// dashboardOIDC serves what the dashboard's OIDC sign-in needs (issue 9):
// GET /dashboard/oidc-config lists each issuer with a dashboardClientId and
// its authorization and token endpoints, read from the issuer's discovery
// document, and the token endpoints' origins join the pages' connect-src.
//
// The token the dashboard sends is the ID token when dashboardClientId is
// one of the issuer's accepted audiences (its aud is always the client id),
// else the access token (whose audience the scope asked for decides).
type dashboardOIDC struct {
	issuers []dashboardIssuer
	client  *http.Client
	logger  *slog.Logger

	mu sync.Mutex
	// found are the discovered endpoints by issuer; a failed discovery is
	// tried again on the next request.
	found map[string]oidcEndpoints
}

type dashboardIssuer struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"clientId"`
	Scope    string `json:"scope"`
	// Token is "id" or "access": the token sent as the bearer credential.
	Token string `json:"token"`
}

type oidcEndpoints struct {
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
}

// oidcConfigIssuer is one entry of GET /dashboard/oidc-config.
type oidcConfigIssuer struct {
	dashboardIssuer
	AuthorizationEndpoint string `json:"authorizationEndpoint"`
	TokenEndpoint         string `json:"tokenEndpoint"`
}

// newDashboardOIDC returns nil when no issuer has a dashboardClientId.
func newDashboardOIDC(issuers []config.OIDC, logger *slog.Logger) *dashboardOIDC {
	d := &dashboardOIDC{client: &http.Client{Timeout: 10 * time.Second}, logger: logger, found: map[string]oidcEndpoints{}}
	for _, o := range issuers {
		if o.DashboardClientID == "" {
			continue
		}
		di := dashboardIssuer{Issuer: o.Issuer, ClientID: o.DashboardClientID, Scope: o.DashboardScope, Token: "access"}
		if di.Scope == "" {
			di.Scope = "openid"
		}
		if slices.Contains(o.Audience, o.DashboardClientID) {
			di.Token = "id"
		}
		d.issuers = append(d.issuers, di)
	}
	if len(d.issuers) == 0 {
		return nil
	}
	return d
}

// signIn is the sign-in page's links, one per issuer.
func (d *dashboardOIDC) signIn() []web.SignInMethod {
	out := make([]web.SignInMethod, 0, len(d.issuers))
	for i, di := range d.issuers {
		name := di.Issuer
		if u, err := url.Parse(di.Issuer); err == nil && u.Host != "" {
			name = u.Host
		}
		out = append(out, web.SignInMethod{Label: "Sign in with " + name, URL: "/signin/oidc?issuer=" + strconv.Itoa(i)})
	}
	return out
}

// connectOrigins are the origins of the token endpoints discovered so far.
func (d *dashboardOIDC) connectOrigins() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, e := range d.found {
		if u, err := url.Parse(e.Token); err == nil && u.Scheme != "" && u.Host != "" {
			if o := u.Scheme + "://" + u.Host; !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (d *dashboardOIDC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Issuers []oidcConfigIssuer `json:"issuers"`
	}{Issuers: []oidcConfigIssuer{}}
	for _, di := range d.issuers {
		e, err := d.endpoints(r.Context(), di.Issuer)
		if err != nil {
			d.logger.WarnContext(r.Context(), "dashboard OIDC sign-in: discovery failed", "issuer", di.Issuer, "error", err)
			w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(map[string]any{"title": "Bad Gateway", "status": http.StatusBadGateway,
				"detail": "The OIDC issuer " + di.Issuer + " could not be discovered."})
			return
		}
		out.Issuers = append(out.Issuers, oidcConfigIssuer{dashboardIssuer: di,
			AuthorizationEndpoint: e.Authorization, TokenEndpoint: e.Token})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// endpoints returns issuer's endpoints, fetching its discovery document the
// first time.
func (d *dashboardOIDC) endpoints(ctx context.Context, issuer string) (oidcEndpoints, error) {
	d.mu.Lock()
	e, ok := d.found[issuer]
	d.mu.Unlock()
	if ok {
		return e, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return e, fmt.Errorf("fetching the discovery document: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return e, fmt.Errorf("fetching the discovery document: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return e, fmt.Errorf("fetching the discovery document: status %d", resp.StatusCode)
	}
	var doc struct {
		Issuer string `json:"issuer"`
		oidcEndpoints
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return e, fmt.Errorf("reading the discovery document: %w", err)
	}
	if doc.Issuer != issuer {
		return e, fmt.Errorf("reading the discovery document: it names issuer %q", doc.Issuer)
	}
	for _, ep := range []string{doc.Authorization, doc.Token} {
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return e, fmt.Errorf("reading the discovery document: endpoint %q is not an absolute http(s) URL", ep)
		}
	}
	d.mu.Lock()
	d.found[issuer] = doc.oidcEndpoints
	d.mu.Unlock()
	return doc.oidcEndpoints, nil
}
