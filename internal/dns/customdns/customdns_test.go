package customdns

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/secret"
)

const testAPIKey = "test-api-key-0123456789"

// fakeAPI answers like an Acmebot Custom DNS endpoint mounted at /api/ and
// checks every request against the contract.
type fakeAPI struct {
	t      *testing.T
	header string

	mu       sync.Mutex
	requests []string          // "METHOD path body"
	records  map[string]string // path → body
	failPut  string            // when set, PUT answers 400 with this body
}

func newFakeAPI(t *testing.T, header string) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{t: t, header: header, records: make(map[string]string)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
	if got := r.Header.Get(f.header); got != testAPIKey {
		http.Error(w, `{"message":"missing or wrong API key"}`, http.StatusUnauthorized)
		return
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		f.t.Errorf("%s %s: Accept = %q", r.Method, r.URL.Path, got)
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/zones":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"id":"zone-1","name":"example.com","nameServers":["ns1.example.net"]},{"id":"zone-2","name":"Sub.Example.ORG.","nameServers":[]}]`)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/api/zones/"):
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("PUT Content-Type = %q", ct)
		}
		if f.failPut != "" {
			http.Error(w, f.failPut, http.StatusBadRequest)
			return
		}
		f.records[r.URL.Path] = string(body)
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/zones/"):
		if _, ok := f.records[r.URL.Path]; !ok {
			http.Error(w, "record not found", http.StatusNotFound)
			return
		}
		delete(f.records, r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "no route", http.StatusMethodNotAllowed)
	}
}

func (f *fakeAPI) takeRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

func TestProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
	}{
		{name: "default header", header: ""},
		{name: "custom header", header: "X-Functions-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.header
			if want == "" {
				want = DefaultAPIKeyHeaderName
			}
			f, srv := newFakeAPI(t, want)
			p, err := New(Config{Endpoint: srv.URL + "/api", APIKey: testAPIKey, APIKeyHeaderName: tt.header})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()

			zones, err := p.Zones(ctx)
			if err != nil {
				t.Fatalf("Zones: %v", err)
			}
			if diff := cmp.Diff([]string{"example.com", "sub.example.org"}, zones); diff != "" {
				t.Errorf("Zones (-want +got):\n%s", diff)
			}
			if err := p.Present(ctx, "example.com", "_acme-challenge.www.example.com.", []string{"value-a", "value-b"}); err != nil {
				t.Fatalf("Present: %v", err)
			}
			if err := p.Present(ctx, "sub.example.org", "_acme-challenge.Sub.Example.org.", []string{"value-c"}); err != nil {
				t.Fatalf("Present: %v", err)
			}
			if err := p.CleanUp(ctx, "example.com.", "_acme-challenge.www.example.com.", []string{"value-a", "value-b"}); err != nil {
				t.Fatalf("CleanUp: %v", err)
			}
			// Already gone: 404 is not an error.
			if err := p.CleanUp(ctx, "example.com", "_acme-challenge.www.example.com.", []string{"value-a"}); err != nil {
				t.Fatalf("CleanUp again: %v", err)
			}
			wantRequests := []string{
				"GET /api/zones",
				`PUT /api/zones/zone-1/records/_acme-challenge.www.example.com {"type":"TXT","ttl":60,"values":["value-a","value-b"]}`,
				`PUT /api/zones/zone-2/records/_acme-challenge.sub.example.org {"type":"TXT","ttl":60,"values":["value-c"]}`,
				"DELETE /api/zones/zone-1/records/_acme-challenge.www.example.com",
				"DELETE /api/zones/zone-1/records/_acme-challenge.www.example.com",
			}
			if diff := cmp.Diff(wantRequests, f.takeRequests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProviderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		apiKey    secret.String
		failPut   string
		zone      string
		wantParts []string
	}{
		{
			name:      "error answer surfaces",
			apiKey:    testAPIKey,
			failPut:   "  {\"message\":\"TXT value rejected by upstream\"}\n",
			zone:      "example.com",
			wantParts: []string{"presenting TXT _acme-challenge.example.com.", "PUT ", "/api/zones/zone-1/records/_acme-challenge.example.com", "HTTP 400 Bad Request", `{"message":"TXT value rejected by upstream"}`},
		},
		{
			name:      "long error answer is cut",
			apiKey:    testAPIKey,
			failPut:   strings.Repeat("e", 2000),
			zone:      "example.com",
			wantParts: []string{"HTTP 400", strings.Repeat("e", maxErrorBody) + "…"},
		},
		{
			name:      "wrong key",
			apiKey:    "wrong-key-987654321",
			zone:      "example.com",
			wantParts: []string{"listing zones", "GET ", "/api/zones", "HTTP 401 Unauthorized", "missing or wrong API key"},
		},
		{
			name:      "unknown zone",
			apiKey:    testAPIKey,
			zone:      "example.net",
			wantParts: []string{`zone "example.net" is not in the API's zone list`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFakeAPI(t, DefaultAPIKeyHeaderName)
			f.failPut = tt.failPut
			p, err := New(Config{Endpoint: srv.URL + "/api/", APIKey: tt.apiKey})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Present(t.Context(), tt.zone, "_acme-challenge."+tt.zone+".", []string{"v"})
			if err == nil {
				t.Fatal("Present succeeded, want an error")
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
			if strings.Contains(err.Error(), tt.apiKey.Reveal()) {
				t.Errorf("error contains the API key")
			}
			if tt.failPut != "" && strings.Contains(err.Error(), strings.Repeat("e", maxErrorBody+1)) {
				t.Errorf("error body not cut")
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		endpoint string
		ttl      int
		wantErr  string
		wantBase string
	}{
		{name: "slash added", endpoint: "https://dns.example.com/api", wantBase: "https://dns.example.com/api/"},
		{name: "query dropped", endpoint: "https://dns.example.com/api/?code=abc", wantBase: "https://dns.example.com/api/"},
		{name: "empty", endpoint: "", wantErr: "endpoint is required"},
		{name: "not http", endpoint: "ftp://x/", wantErr: "is not an http(s) URL"},
		{name: "negative ttl", endpoint: "https://x/", ttl: -5, wantErr: "ttl -5 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(Config{Endpoint: tt.endpoint, TTL: tt.ttl})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.base != tt.wantBase {
				t.Errorf("base = %q, want %q", p.base, tt.wantBase)
			}
		})
	}
}

func TestNameServers(t *testing.T) {
	t.Parallel()
	_, srv := newFakeAPI(t, "X-Api-Key")
	p, err := New(Config{Endpoint: srv.URL + "/api/", APIKey: testAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := p.NameServers(t.Context(), "Example.com.")
	if err != nil || !cmp.Equal(ns, []string{"ns1.example.net"}) {
		t.Errorf("NameServers = %v, %v", ns, err)
	}
	if _, err := p.NameServers(t.Context(), "nowhere.test"); err == nil {
		t.Error("NameServers of an unknown zone: no error")
	}
}
