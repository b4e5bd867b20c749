package app

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/certkeeper/certkeeper/web"
)

// withDashboard puts the dashboard (pages, assets, security headers, CSRF
// protection) in front of the API handler. The public URL's origin, when
// configured, is trusted for state-changing browser requests, so that the
// dashboard works behind a proxy that rewrites Host.
func (a *App) withDashboard(apiHandler http.Handler) (http.Handler, error) {
	var trusted []string
	if a.cfg.PublicURL != "" {
		u, err := url.Parse(a.cfg.PublicURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("reading publicURL %q: not an absolute URL", a.cfg.PublicURL)
		}
		trusted = append(trusted, u.Scheme+"://"+u.Host)
	}
	opts := web.Options{API: apiHandler, TrustedOrigins: trusted, Logger: a.logger}
	if d := newDashboardOIDC(a.cfg.Auth.OIDC, a.logger); d != nil {
		opts.SignIn, opts.OIDCConfig, opts.ConnectOrigins = d.signIn(), d, d.connectOrigins
	}
	return web.New(opts)
}
