package web_test

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/certkeeper/certkeeper/web"
)

// fakeAPI records the requests that reach the API.
type fakeAPI struct {
	mu    sync.Mutex
	paths []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"api":true}`))
}

func newHandler(t *testing.T, opts web.Options) (http.Handler, *fakeAPI) {
	t.Helper()
	api := &fakeAPI{}
	opts.API = api
	h, err := web.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h, api
}

func serve(h http.Handler, method, target string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://certkeeper.test"+target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

var pages = []string{"/", "/signin", "/new", "/certificates/www-example-com", "/operations",
	"/operations/0123456789abcdef0123456789abcdef"}

func TestSecurityHeadersEverywhere(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, web.Options{})
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
			"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; " +
			"require-trusted-types-for 'script'; trusted-types 'none'",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	}
	for _, target := range append(slices.Clone(pages), "/static/css/app.css", "/static/js/api.js", "/api/certificates", "/nope", "/static/nope.js") {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			rec := serve(h, http.MethodGet, target, nil)
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPages(t *testing.T) {
	t.Parallel()
	h, api := newHandler(t, web.Options{})
	for _, target := range pages {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			rec := serve(h, http.MethodGet, target, nil)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			etag := rec.Header().Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			again := serve(h, http.MethodGet, target, map[string]string{"If-None-Match": etag})
			if again.Code != http.StatusNotModified {
				t.Errorf("with If-None-Match: %d, want 304", again.Code)
			}
			head := serve(h, http.MethodHead, target, nil)
			if head.Code != http.StatusOK || head.Body.Len() != 0 {
				t.Errorf("HEAD: %d with %d body bytes", head.Code, head.Body.Len())
			}
		})
	}
	// The same page is served for every certificate: pages hold no data.
	a := serve(h, http.MethodGet, "/certificates/a", nil).Body.String()
	b := serve(h, http.MethodGet, "/certificates/b", nil).Body.String()
	if a != b {
		t.Error("the certificate page differs by certificate name")
	}
	if len(api.paths) != 0 {
		t.Errorf("pages reached the API: %v", api.paths)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	h, api := newHandler(t, web.Options{})
	for _, target := range []string{"/nope", "/certificates", "/certificates/a/b", "/api", "/static/", "/static/nope.js",
		"/static/../web.go", "/static/%2e%2e/web.go", "/templates/layout.html"} {
		rec := serve(h, http.MethodGet, target, nil)
		// ServeMux redirects paths that are not clean, and /api to /api/.
		if rec.Code != http.StatusNotFound && rec.Code/100 != 3 {
			t.Errorf("GET %s = %d, want 404 or a redirect", target, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "package web") {
			t.Errorf("GET %s served source code", target)
		}
	}
	rec := serve(h, http.MethodGet, "/nope", nil)
	if !strings.Contains(rec.Body.String(), "<h1>Not found</h1>") {
		t.Errorf("the 404 page is %q", rec.Body)
	}
	if len(api.paths) != 0 {
		t.Errorf("unknown paths reached the API: %v", api.paths)
	}
}

func TestAPIIsForwarded(t *testing.T) {
	t.Parallel()
	h, api := newHandler(t, web.Options{})
	rec := serve(h, http.MethodGet, "/api/certificates", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"api":true}` || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("GET /api/certificates: %d %q %q", rec.Code, rec.Body, rec.Header().Get("Cache-Control"))
	}
	serve(h, http.MethodPost, "/api/certificate", nil)
	serve(h, http.MethodDelete, "/api/unknown", nil)
	if diff := cmp.Diff([]string{"GET /api/certificates", "POST /api/certificate", "DELETE /api/unknown"}, api.paths); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}
}

func TestCrossOriginRequestsAreRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		method  string
		header  map[string]string
		allowed bool
	}{
		{"no browser headers (curl, the CLI)", http.MethodPost, nil, true},
		{"same origin", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://certkeeper.test"}, true},
		{"typed by the person", http.MethodPost, map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"cross site", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, false},
		{"same site, other origin", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://other.certkeeper.test"}, false},
		{"old browser, other origin", http.MethodPost, map[string]string{"Origin": "https://evil.example"}, false},
		{"trusted origin", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://certs.example.com"}, true},
		{"reads are never refused", http.MethodGet, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, api := newHandler(t, web.Options{TrustedOrigins: []string{"https://certs.example.com"}})
			rec := serve(h, tt.method, "/api/certificate/www/revoke", tt.header)
			if tt.allowed {
				if rec.Code != http.StatusOK || len(api.paths) != 1 {
					t.Errorf("status %d, API saw %v; want the request to reach the API", rec.Code, api.paths)
				}
				return
			}
			if rec.Code != http.StatusForbidden || len(api.paths) != 0 {
				t.Fatalf("status %d, API saw %v; want 403 before the API", rec.Code, api.paths)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if !strings.Contains(rec.Body.String(), `"detail":"Cross-origin requests that change state are refused."`) {
				t.Errorf("body %s", rec.Body)
			}
		})
	}
	if _, err := web.New(web.Options{API: http.NotFoundHandler(), TrustedOrigins: []string{"not an origin"}}); err == nil {
		t.Error("New accepted a trusted origin that is not one")
	}
}

func TestNewNeedsAPI(t *testing.T) {
	t.Parallel()
	if _, err := web.New(web.Options{}); err == nil {
		t.Error("New without an API handler succeeded")
	}
}

func TestSignInMethods(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, web.Options{SignIn: []web.SignInMethod{{Label: "Sign in with <Entra ID>", URL: "/auth/oidc/start?x=1&y=2"}}})
	body := serve(h, http.MethodGet, "/signin", nil).Body.String()
	if !strings.Contains(body, `<a class="button" href="/auth/oidc/start?x=1&amp;y=2">Sign in with &lt;Entra ID&gt;</a>`) {
		t.Errorf("the sign-in page does not offer the method, escaped:\n%s", body)
	}
	plain, _ := newHandler(t, web.Options{})
	if strings.Contains(serve(plain, http.MethodGet, "/signin", nil).Body.String(), "other-signin") {
		t.Error("the sign-in page offers other methods when none is configured")
	}
}

func TestOIDCSignInHooks(t *testing.T) {
	t.Parallel()
	var origins []string
	cfg := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"issuers":[]}`)) })
	h, _ := newHandler(t, web.Options{OIDCConfig: cfg, ConnectOrigins: func() []string { return origins }})
	tests := []struct {
		name    string
		origins []string
		want    string
	}{
		{"none discovered yet", nil, "connect-src 'self'; "},
		{"token endpoints", []string{"https://login.example", "https://idp.example:8443"},
			"connect-src 'self' https://login.example https://idp.example:8443; "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origins = tt.origins
			rec := serve(h, http.MethodGet, "/signin/oidc", nil)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "/static/js/pages/oidc.js") {
				t.Errorf("GET /signin/oidc = %d, want the OIDC sign-in page", rec.Code)
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, tt.want) {
				t.Errorf("CSP %q, want %q in it", csp, tt.want)
			}
		})
	}
	if rec := serve(h, http.MethodGet, "/dashboard/oidc-config", nil); rec.Code != http.StatusOK || rec.Body.String() != `{"issuers":[]}` {
		t.Errorf("GET /dashboard/oidc-config = %d %q", rec.Code, rec.Body.String())
	}
	plain, _ := newHandler(t, web.Options{})
	if rec := serve(plain, http.MethodGet, "/dashboard/oidc-config", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /dashboard/oidc-config without OIDC = %d, want 404", rec.Code)
	}
}

func TestStaticAssets(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, web.Options{})
	tests := map[string]string{
		"/static/css/app.css":              "text/css; charset=utf-8",
		"/static/js/pages/certificates.js": "text/javascript; charset=utf-8",
		"/static/favicon.svg":              "image/svg+xml",
	}
	for target, ct := range tests {
		rec := serve(h, http.MethodGet, target, nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ct {
			t.Errorf("GET %s: %d %q, want 200 %q", target, rec.Code, rec.Header().Get("Content-Type"), ct)
		}
		if etag := rec.Header().Get("ETag"); etag == "" ||
			serve(h, http.MethodGet, target, map[string]string{"If-None-Match": etag}).Code != http.StatusNotModified {
			t.Errorf("GET %s: no working ETag", target)
		}
	}
}

// TestMarkup checks every page for what the Content-Security-Policy would
// block or what would make it hard to use: inline scripts, style or event
// attributes, javascript: URLs, references to assets that do not exist,
// duplicate ids, and form controls without a label.
func TestMarkup(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, web.Options{SignIn: []web.SignInMethod{{Label: "Sign in with OIDC", URL: "/auth/start"}}})
	for _, target := range append(slices.Clone(pages), "/nope") {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			doc, err := html.Parse(bytes.NewReader(serve(h, http.MethodGet, target, nil).Body.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]int{}
			labelled := map[string]bool{}
			var controls []*html.Node
			var walk func(n *html.Node)
			walk = func(n *html.Node) {
				if n.Type == html.ElementNode {
					checkElement(t, h, n)
					if id := attr(n, "id"); id != "" {
						ids[id]++
					}
					switch n.Data {
					case "label":
						labelled[attr(n, "for")] = true
					case "input", "select", "textarea":
						controls = append(controls, n)
					}
				}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
			}
			walk(doc)
			for id, n := range ids {
				if n > 1 {
					t.Errorf("id %q is used %d times", id, n)
				}
			}
			for _, c := range controls {
				if !labelled[attr(c, "id")] && attr(c, "aria-label") == "" {
					t.Errorf("<%s id=%q> has no label", c.Data, attr(c, "id"))
				}
			}
			if ids["main"] != 1 || ids["announcer"] != 1 {
				t.Error("the page lacks the main landmark or the live region")
			}
		})
	}
}

func checkElement(t *testing.T, h http.Handler, n *html.Node) {
	t.Helper()
	for _, a := range n.Attr {
		if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
			t.Errorf("<%s> has a %s attribute, which the CSP blocks", n.Data, a.Key)
		}
		if (a.Key == "href" || a.Key == "src") && strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:") {
			t.Errorf("<%s %s=%q>", n.Data, a.Key, a.Val)
		}
		if (a.Key == "href" || a.Key == "src") && strings.HasPrefix(a.Val, "/static/") {
			if rec := serve(h, http.MethodGet, a.Val, nil); rec.Code != http.StatusOK {
				t.Errorf("<%s %s=%q>: the asset answers %d", n.Data, a.Key, a.Val, rec.Code)
			}
		}
	}
	switch n.Data {
	case "script":
		if attr(n, "src") == "" || attr(n, "type") != "module" || n.FirstChild != nil {
			t.Errorf("a script that is not an external module: %v", n.Attr)
		}
	case "style":
		t.Error("an inline <style> element, which the CSP blocks")
	case "html":
		if attr(n, "lang") == "" {
			t.Error("<html> has no lang")
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

var importPattern = regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"`)

// TestScripts checks that every module import resolves to an embedded file
// and that no script uses what the CSP forbids (eval, strings as HTML, inline
// styles set from markup).
func TestScripts(t *testing.T) {
	t.Parallel()
	static, err := fs.Sub(web.Files(), "static")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := regexp.MustCompile(`\beval\(|new Function\(|\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|setAttribute\("style"|localStorage\.setItem|document\.cookie\s*=`)
	n := 0
	err = fs.WalkDir(static, "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		src, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		for _, m := range importPattern.FindAllStringSubmatch(string(src), -1) {
			target := path.Join(path.Dir(p), m[1])
			if _, err := fs.Stat(static, target); err != nil || !strings.HasPrefix(m[1], ".") {
				t.Errorf("%s imports %q, which is not an embedded module", p, m[1])
			}
		}
		if loc := forbidden.FindIndex(src); loc != nil {
			t.Errorf("%s uses %q", p, src[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("found %d scripts; the walk is broken", n)
	}
}
