package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/config"
)

// hostileRequest is one malicious or malformed API request.
type hostileRequest struct {
	name        string
	method      string
	path        string
	body        string
	contentType string
	header      http.Header
	// noAuth sends no key.
	noAuth bool
}

// bodyRoutes are the routes that read a JSON body.
var bodyRoutes = []string{
	"/api/certificate",
	"/api/certificates",
	"/api/certificate/hostile-example-test/renew",
	"/api/certificates/hostile-example-test/revoke",
	"/api/certificates/revoke",
	"/api/keys",
	"/api/certificate/hostile-example-test/replace",
}

// hostileNames are DNS names and certificate names no request may be
// accepted with: SQL, path traversal, confusables, control characters.
var hostileNames = []string{
	"'; DROP TABLE certificates;--",
	"a' OR '1'='1.example.test",
	"\" OR 1=1 --",
	"../../../../etc/passwd",
	"..\\..\\windows\\win.ini",
	"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
	"example.test/../../secret",
	"exa\u0000mple.test",
	"www.example.test\r\nX-Injected: 1",
	"www.example.test\nSet-Cookie: a=b",
	"\u202ewww.example.test",
	"www.ex\u0007ample.test", // (a zero-width space is removed by IDNA mapping, as browsers do: not hostile)
	"www.\u0435xample.test.invalid-tld-\u0435",
	"\uff57\uff57\uff57.example.test/x",
	strings.Repeat("a", 64) + ".example.test",
	strings.Repeat("a.", 130) + "example.test",
	"*.*.example.test",
	"www.*.example.test",
	"*example.test",
	"-leading.example.test",
	"under_score..example.test",
	"127.0.0.1",
	"[::1]",
	"http://example.test/",
	"example.test:443",
	"$(reboot).example.test",
	"`id`.example.test",
	"{{7*7}}.example.test",
	"<script>alert(1)</script>.example.test",
	"\xff\xfe.example.test",
}

// hostileCorpus builds the corpus: at least 200 requests, none of which the
// service may accept or fail on.
func hostileCorpus() []hostileRequest {
	var c []hostileRequest
	add := func(name, method, path, body string) {
		c = append(c, hostileRequest{name: name, method: method, path: path, body: body})
	}
	broken := []string{
		"", " ", "{", "}", "[", "]", "null", "true", "0", `"string"`, `[]`, `[{}]`,
		`{"dnsNames":`, `{"dnsNames":["x.example.test"]`, `{"dnsNames":["x.example.test"],}`,
		`{"dnsNames":["x.example.test"]} {}`, `{'dnsNames':['x.example.test']}`,
		`{"dnsNames":["x.example.test"] /* comment */}`, "\ufeff{\"dnsNames\":[\"x.example.test\"]}",
		"{\"dnsNames\":[\"x.example.test\xff\"]}", `{"dnsNames":NaN}`, `{"keySize":1e999}`,
		"\x00\x00\x00\x00", `{"dnsNames":["x.example.test"],"dnsNames":{}}`,
	}
	for _, route := range bodyRoutes {
		for i, b := range broken {
			add(fmt.Sprintf("broken JSON %d to %s", i, route), http.MethodPost, route, b)
		}
	}
	wrongTypes := []string{
		`{"dnsNames":"x.example.test"}`, `{"dnsNames":1}`, `{"dnsNames":{"a":1}}`, `{"dnsNames":[1,2]}`,
		`{"dnsNames":[null]}`, `{"dnsNames":[["x.example.test"]]}`, `{"dnsNames":[true]}`, `{"dnsNames":[]}`,
		`{"dnsNames":["x.example.test"],"keyType":1}`, `{"dnsNames":["x.example.test"],"keyType":"DSA"}`,
		`{"dnsNames":["x.example.test"],"keySize":"big"}`, `{"dnsNames":["x.example.test"],"keyType":"RSA","keySize":-1}`,
		`{"dnsNames":["x.example.test"],"keyType":"RSA","keySize":99999999999}`, `{"dnsNames":["x.example.test"],"keyType":"RSA","keySize":2048.5}`,
		`{"dnsNames":["x.example.test"],"reuseKey":"yes"}`, `{"dnsNames":["x.example.test"],"dnsProviderName":[]}`,
		`{"dnsNames":["x.example.test"],"tags":[1]}`, `{"dnsNames":["x.example.test"],"tags":{"a":{"b":1}}}`,
		`{"dnsNames":["x.example.test"],"keyType":"EC","keyCurveName":"P-1"}`, `{"dnsNames":["x.example.test"],"profile":"../x"}`,
		`{"dnsNames":["x.example.test"],"dnsProviderName":{"../../etc":1}}`, `{"dnsNames":["x.example.test"],"dnsAlias":"'; --"}`,
	}
	for i, b := range wrongTypes {
		add(fmt.Sprintf("wrong type %d", i), http.MethodPost, "/api/certificate", b)
	}
	for i, b := range []string{`{"reason":"x"}`, `{"reason":-1}`, `{"reason":[]}`, `{"names":"a"}`, `{"names":[1]}`} {
		add(fmt.Sprintf("wrong type revoke %d", i), http.MethodPost, "/api/certificates/revoke", b)
		add(fmt.Sprintf("wrong type single revoke %d", i), http.MethodPost, "/api/certificate/hostile-example-test/revoke", b)
	}
	for i, b := range []string{`{"name":1}`, `{"name":"k","roles":"admin"}`, `{"name":"k","roles":["root"]}`, `{"name":"k","zones":[1]}`,
		`{"name":"` + strings.Repeat("k", 10000) + `"}`, `{"name":"k","roles":["admin"],"zones":["../"]}`} {
		add(fmt.Sprintf("wrong type key %d", i), http.MethodPost, "/api/keys", b)
	}
	// Huge arrays and deep nesting.
	many := make([]string, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("n%d.example.test", i)
	}
	manyJSON, _ := json.Marshal(many)
	add("5000 names", http.MethodPost, "/api/certificate", `{"dnsNames":`+string(manyJSON)+`}`)
	add("5000 names bulk revoke", http.MethodPost, "/api/certificates/revoke", `{"names":`+string(manyJSON)+`}`)
	add("300000 empty strings", http.MethodPost, "/api/certificate", `{"dnsNames":[`+strings.Repeat(`"",`, 300000)+`""]}`)
	add("2 MiB body", http.MethodPost, "/api/certificate", `{"dnsNames":["`+strings.Repeat("a", 2<<20)+`"]}`)
	add("100000 tags", http.MethodPost, "/api/certificate", `{"dnsNames":["x.example.test"],"tags":{`+tagList(100000)+`}}`)
	for _, depth := range []int{100, 10000, 100000} {
		add(fmt.Sprintf("nested arrays %d", depth), http.MethodPost, "/api/certificate",
			`{"dnsNames":`+strings.Repeat("[", depth)+strings.Repeat("]", depth)+`}`)
		add(fmt.Sprintf("nested objects %d", depth), http.MethodPost, "/api/certificate",
			`{"tags":`+strings.Repeat(`{"a":`, depth)+"1"+strings.Repeat("}", depth)+`}`)
		add(fmt.Sprintf("nested top level %d", depth), http.MethodPost, "/api/certificates/revoke", strings.Repeat("[", depth))
	}
	// Hostile names in bodies and paths.
	for i, n := range hostileNames {
		b, _ := json.Marshal(map[string]any{"dnsNames": []string{n}})
		add(fmt.Sprintf("hostile DNS name %d", i), http.MethodPost, "/api/certificate", string(b))
		b, _ = json.Marshal(map[string]any{"dnsNames": []string{"ok.example.test"}, "dnsProviderName": n})
		add(fmt.Sprintf("hostile provider name %d", i), http.MethodPost, "/api/certificate", string(b))
		esc := url.PathEscape(n)
		add(fmt.Sprintf("hostile certificate name %d in renew", i), http.MethodPost, "/api/certificate/"+esc+"/renew", "")
		add(fmt.Sprintf("hostile certificate name %d in download", i), http.MethodGet, "/api/certificates/"+esc+"/download", "")
		add(fmt.Sprintf("hostile operation id %d", i), http.MethodGet, "/api/state/"+esc, "")
	}
	// Query strings and methods.
	for i, v := range []string{"-1", "abc", "99999999999999999999", "\x00\xff", "' OR 1=1", "1e3"} {
		add(fmt.Sprintf("operations limit %d", i), http.MethodGet, "/api/operations?limit="+url.QueryEscape(v), "")
		add(fmt.Sprintf("audit limit %d", i), http.MethodGet, "/api/audit?limit="+url.QueryEscape(v), "")
		add(fmt.Sprintf("operations status %d", i), http.MethodGet, "/api/operations?status="+url.QueryEscape(v), "")
		add(fmt.Sprintf("operations certificate %d", i), http.MethodGet, "/api/operations?certificate="+url.QueryEscape(v+"/../x"), "")
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, "TRACE", "PROPFIND"} {
		add("method "+m, m, "/api/certificate", `{"dnsNames":["x.example.test"]}`)
	}
	add("unknown route", http.MethodGet, "/api/%2e%2e/%2e%2e/etc/passwd", "")
	// Content types and headers.
	for i, ct := range []string{"text/plain", "application/xml", "multipart/form-data; boundary=x", "application/json; charset=\"", "/"} {
		c = append(c, hostileRequest{name: fmt.Sprintf("content type %d", i), method: http.MethodPost, path: "/api/certificate",
			body: `{"dnsNames":["x.example.test"]}`, contentType: ct})
	}
	for i, v := range []string{"", "wrong", "' OR '1'='1", strings.Repeat("k", 16<<10), "\u00e9\u00e9", testKey + "x"} {
		c = append(c, hostileRequest{name: fmt.Sprintf("bad key %d", i), method: http.MethodGet, path: "/api/certificates",
			noAuth: true, header: http.Header{"X-Functions-Key": {v}}})
		c = append(c, hostileRequest{name: fmt.Sprintf("bad bearer %d", i), method: http.MethodGet, path: "/api/certificates",
			noAuth: true, header: http.Header{"Authorization": {"Bearer " + v}}})
	}
	c = append(c, hostileRequest{name: "forwarded-for garbage", method: http.MethodPost, path: "/api/certificate", body: "{",
		header: http.Header{"X-Forwarded-For": {"'; DROP TABLE audit_log;--, ::1, 999.999.1.1"}}})
	return c
}

func tagList(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"t%d":"v"`, i)
	}
	return b.String()
}

// TestHostileInput replays the corpus against the running service: every
// request is answered 4xx with a problem document (or the empty 401/403),
// never 5xx, never a hang; then raw requests the HTTP server itself must
// refuse; then it checks the service stays responsive under a slow-request
// attack.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	cfg := d.config(t, "sqlite")
	// The corpus is about validation, not about the rate limit: a limit
	// that does not answer 429 first.
	cfg.Auth.RateLimit = config.RateLimit{PerMinute: 1e6, Burst: 1e6}
	base := service(t, cfg)
	client := &http.Client{Timeout: 60 * time.Second}

	corpus := hostileCorpus()
	if len(corpus) < 200 {
		t.Fatalf("corpus has %d requests, want at least 200", len(corpus))
	}
	t.Logf("hostile corpus: %d requests", len(corpus))
	for _, h := range corpus {
		t.Run(h.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), h.method, base+h.path, strings.NewReader(h.body))
			if err != nil {
				// Some paths are not valid URLs for the client; send them raw.
				status, _ := rawRequest(t, base, h.method+" "+h.path+" HTTP/1.1\r\nHost: x\r\nX-Functions-Key: "+testKey+"\r\nContent-Length: 0\r\n\r\n")
				if status < 400 || status > 499 {
					t.Errorf("raw %s %q = %d; want 4xx", h.method, h.path, status)
				}
				return
			}
			for k, v := range h.header {
				req.Header[k] = v
			}
			if !h.noAuth {
				req.Header.Set("X-Functions-Key", testKey)
			}
			if h.contentType != "" {
				req.Header.Set("Content-Type", h.contentType)
			} else if h.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("request failed (hang or reset): %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			checkProblem(t, resp, body)
		})
	}

	t.Run("raw", func(t *testing.T) {
		// want is the status the HTTP server itself must answer where it is
		// not any 4xx: the protocol's own answers to an unknown version and
		// an unknown transfer coding (RFC 9112 §2.6, §6.1), and the
		// ServeMux's redirect of an unclean path to its clean form, which
		// then is an unknown page.
		want := map[string]int{"bad version": 505, "smuggling TE+CL": 501, "path traversal raw": 307}
		raw := map[string]string{
			"oversized header":   "GET /api/certificates HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 128<<10) + "\r\n\r\n",
			"header injection":   "GET /api/certificates HTTP/1.1\r\nHost: x\r\nX-Functions-Key: a\rX-Evil: 1\r\n\r\n",
			"NUL in header":      "GET /api/certificates HTTP/1.1\r\nHost: x\r\nX-Functions-Key: a\x00b\r\n\r\n",
			"bad request line":   "GET\r\n\r\n",
			"bad version":        "GET /api/ping HTTP/9.9\r\nHost: x\r\n\r\n",
			"no host":            "GET /api/ping HTTP/1.1\r\n\r\n",
			"two lengths":        "POST /api/certificate HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
			"negative length":    "POST /api/certificate HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
			"bad chunking":       "POST /api/certificate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Functions-Key: " + testKey + "\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
			"smuggling TE+CL":    "POST /api/certificate HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
			"10000 headers":      "GET /api/ping HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 10000) + "\r\n",
			"path traversal raw": "GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
			"absolute URI other": "GET http://evil.test/api/certificates HTTP/1.1\r\nHost: x\r\n\r\n",
			"control in type":    "POST /api/certificate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\x01\r\nContent-Length: 2\r\n\r\n{}",
			"DEL in type":        "POST /api/certificate HTTP/1.1\r\nHost: x\r\nContent-Type: \x7f\r\nContent-Length: 2\r\n\r\n{}",
		}
		for name, r := range raw {
			t.Run(name, func(t *testing.T) {
				status, _ := rawRequest(t, base, r)
				if w, ok := want[name]; ok {
					if status != w {
						t.Errorf("status %d; want %d", status, w)
					}
				} else if status < 400 || status > 499 {
					t.Errorf("status %d; want 4xx", status)
				}
			})
		}
	})

	t.Run("slow body", func(t *testing.T) {
		// A body that trickles in is still answered.
		conn := dial(t, base)
		body := `{"dnsNames":["slow..example.test"]}`
		fmt.Fprintf(conn, "POST /api/certificate HTTP/1.1\r\nHost: x\r\nX-Functions-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", testKey, len(body))
		for i := range len(body) {
			conn.Write([]byte{body[i]})
			time.Sleep(20 * time.Millisecond)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		checkProblem(t, resp, b)
	})

	t.Run("slowloris", func(t *testing.T) {
		// Many connections that never finish their headers or body: the
		// service keeps answering others, and closes the slow ones.
		const n = 200
		var conns []net.Conn
		for i := range n {
			c := dial(t, base)
			if i%2 == 0 {
				fmt.Fprintf(c, "GET /api/certificates HTTP/1.1\r\nHost: x\r\nX-A: ")
			} else {
				fmt.Fprintf(c, "POST /api/certificate HTTP/1.1\r\nHost: x\r\nX-Functions-Key: %s\r\nContent-Length: 100000\r\n\r\n{", testKey)
			}
			conns = append(conns, c)
		}
		for range 20 {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/certificates", nil)
			req.Header.Set("X-Functions-Key", testKey)
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				t.Fatalf("service unresponsive under slow requests: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /api/certificates under slow requests = %d", resp.StatusCode)
			}
		}
		// The server's header and body read timeouts close every slow
		// connection: reading ends (EOF, or a 408/400 answer then EOF).
		var wg sync.WaitGroup
		closed := make([]bool, n)
		start := time.Now()
		for i, c := range conns {
			wg.Go(func() {
				c.SetReadDeadline(time.Now().Add(3 * time.Minute))
				_, err := io.Copy(io.Discard, c)
				closed[i] = err == nil
			})
		}
		wg.Wait()
		for i, ok := range closed {
			if !ok {
				t.Errorf("slow connection %d was not closed by the server", i)
			}
		}
		t.Logf("%d slow connections closed by the server within %v", n, time.Since(start).Round(time.Second))
	})
}

// checkProblem fails unless resp is a 4xx problem document, or an empty
// 401/403.
func checkProblem(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		t.Fatalf("status %d; want 4xx: %.300s", resp.StatusCode, body)
	}
	if (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) && len(body) == 0 {
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("status %d with Content-Type %q; want a problem document: %.300s", resp.StatusCode, ct, body)
	}
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != resp.StatusCode || p.Title == "" {
		t.Fatalf("problem document %.300s does not match status %d (%v)", body, resp.StatusCode, err)
	}
}

func dial(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawRequest writes raw to a new connection and returns the status of the
// answer.
func rawRequest(t *testing.T, base, raw string) (int, []byte) {
	t.Helper()
	c := dial(t, base)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	go func() { io.Copy(c, strings.NewReader(raw)) }() // the server may answer before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, bytes.TrimSpace(b)
}
