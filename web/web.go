// Package web holds certkeeper's dashboard: HTML pages rendered from
// html/template, a stylesheet and plain JavaScript modules, all embedded in
// the binary, and the handler that serves them in front of the API.
//
// The pages carry no data. Each is rendered once, when the handler is
// built, and its script fills it from the JSON API (/api/...) with the
// credential the person signed in with, which the script keeps in the
// tab's sessionStorage and nowhere else: no cookie, no local storage. So
// the pages and static assets are served to anyone, exactly as a static
// file would be, while every request for data or for a change goes through
// the API's authentication and role checks, the same as for any other
// client.
//
// Every response, the API's included, carries a strict Content-Security-
// Policy (scripts and styles only from this origin, nothing inline, no
// framing, Trusted Types required), X-Content-Type-Options: nosniff and
// Referrer-Policy: no-referrer. State-changing requests are protected
// against cross-site request forgery twice: the credential travels in a
// header that another site's page cannot set (never an ambient cookie),
// and http.CrossOriginProtection refuses non-safe requests that a browser
// marks as cross-origin.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed templates static
var files embed.FS

// ContentSecurityPolicy is sent with every response. Scripts and styles
// come only from this origin as files (no inline script, style attribute
// or eval), the page talks only to its own origin, may not be framed, and
// may not write HTML from strings (Trusted Types with no policy).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// Options configure the dashboard handler.
type Options struct {
	// API serves every path under /api/. Required.
	API http.Handler
	// SignIn lists ways to sign in besides an API key, shown as links on
	// the sign-in page. This is the hook for OIDC: a flow that ends by
	// calling signIn({kind: "bearer", secret: token}) from
	// /static/js/auth.js keeps the token as the API key is kept, and the
	// pages then send it as "Authorization: Bearer". None by default.
	SignIn []SignInMethod
	// TrustedOrigins are origins ("https://certs.example.com") besides the
	// request's own from which state-changing browser requests are
	// accepted, such as the public URL when a proxy rewrites Host.
	TrustedOrigins []string
	// OIDCConfig, when set, answers GET /dashboard/oidc-config: what the
	// OIDC sign-in page (/signin/oidc) needs to run the authorization code
	// flow with an issuer (issue 9).
	OIDCConfig http.Handler
	// ConnectOrigins, when set, returns origins the pages may fetch from
	// besides their own (added to connect-src), such as OIDC token
	// endpoints. It is called for every response.
	ConnectOrigins func() []string
	// Logger receives one line per refused cross-origin request. Nil
	// discards.
	Logger *slog.Logger
}

// SignInMethod is one way of signing in offered on the sign-in page.
type SignInMethod struct {
	// Label is the link text, such as "Sign in with Microsoft Entra ID".
	Label string
	// URL starts the flow, such as "/auth/oidc/start".
	URL string
}

// New returns the handler for the whole HTTP surface: the API under /api/,
// the pages and the static assets. It is safe for concurrent use.
func New(opts Options) (http.Handler, error) {
	if opts.API == nil {
		return nil, fmt.Errorf("web: Options.API is required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pages, err := renderPages(opts.SignIn)
	if err != nil {
		return nil, err
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("/api/", opts.API)
	mux.Handle("GET /static/{path...}", assets)
	for pattern, name := range pageRoutes {
		mux.Handle(pattern, pages[name])
	}
	mux.Handle("/", notFound{page: pages["notfound"]})
	if opts.OIDCConfig != nil {
		mux.Handle("GET /dashboard/oidc-config", opts.OIDCConfig)
	}

	cop := http.NewCrossOriginProtection()
	for _, origin := range opts.TrustedOrigins {
		if err := cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("web: trusting origin %q: %w", origin, err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.WarnContext(r.Context(), "cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.4","title":"Forbidden",` +
			`"status":403,"detail":"Cross-origin requests that change state are refused."}`))
	}))
	return securityHeaders(cop.Handler(mux), opts.ConnectOrigins), nil
}

// pageRoutes maps each page's route to the page that answers it.
var pageRoutes = map[string]string{
	"GET /{$}":                 "certificates",
	"GET /signin":              "signin",
	"GET /signin/oidc":         "oidc",
	"GET /new":                 "new",
	"GET /certificates/{name}": "certificate",
	"GET /operations":          "operations",
	"GET /operations/{id}":     "operation",
}

// securityHeaders sets the headers every response carries; connect, when
// set, adds origins to the policy's connect-src.
func securityHeaders(next http.Handler, connect func() []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		csp := ContentSecurityPolicy
		if connect != nil {
			if origins := connect(); len(origins) > 0 {
				csp = strings.Replace(csp, "connect-src 'self'", "connect-src 'self' "+strings.Join(origins, " "), 1)
			}
		}
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		next.ServeHTTP(w, r)
	})
}

var (
	_ http.Handler = (*page)(nil)
	_ http.Handler = notFound{}
	_ http.Handler = assetHandler(nil)
)

// page is one rendered page, served as a static file would be.
type page struct {
	body []byte
	etag string
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", p.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.body))
}

// notFound answers every path outside /api/ that is not a page or an asset
// with the 404 page.
type notFound struct{ page *page }

func (n notFound) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNotFound)
	if r.Method != http.MethodHead {
		_, _ = w.Write(n.page.body)
	}
}

// pageData is what the templates render; it holds no certificate data.
type pageData struct {
	// Name is the page, also the name of its script under js/pages/.
	Name  string
	Title string
	// Nav is the navigation entry marked current.
	Nav    string
	Chrome bool
	SignIn []SignInMethod
}

// pageTitles is each page's title, and the pages that show the navigation.
var pageTitles = map[string]struct {
	title, nav string
	chrome     bool
}{
	"signin":       {"Sign in", "", false},
	"oidc":         {"Signing in", "", false},
	"certificates": {"Certificates", "certificates", true},
	"certificate":  {"Certificate", "certificates", true},
	"new":          {"Add a certificate", "new", true},
	"operations":   {"Operations", "operations", true},
	"operation":    {"Operation", "operations", true},
	"notfound":     {"Not found", "", true},
}

// renderPages renders every page once.
func renderPages(signIn []SignInMethod) (map[string]*page, error) {
	out := make(map[string]*page, len(pageTitles))
	for name, meta := range pageTitles {
		t, err := template.New("layout.html").ParseFS(files, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parsing the %s page: %w", name, err)
		}
		var buf bytes.Buffer
		data := pageData{Name: name, Title: meta.title, Nav: meta.nav, Chrome: meta.chrome, SignIn: signIn}
		if err := t.Execute(&buf, data); err != nil {
			return nil, fmt.Errorf("web: rendering the %s page: %w", name, err)
		}
		out[name] = &page{body: buf.Bytes(), etag: etag(buf.Bytes())}
	}
	return out, nil
}

// asset is one static file.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes are the types of the static files, fixed here rather than
// taken from the system's MIME tables, which differ between machines.
var contentTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
}

// assetHandler serves the embedded static files; they are revalidated on
// every use (no-cache with an ETag), so a new binary never meets a stale
// script.
type assetHandler map[string]asset

func loadAssets() (assetHandler, error) {
	out := assetHandler{}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("no content type for %s", p)
		}
		out[strings.TrimPrefix(p, "static/")] = asset{body: body, contentType: ct, etag: etag(body)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: reading static assets: %w", err)
	}
	return out, nil
}

func (h assetHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h[r.PathValue("path")]
	if !ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("404 not found\n"))
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// etag is a strong validator for body.
func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
