package powerdns_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/powerdns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const apiKey = "pdns-api-key-0123456789"

// fakePDNS answers like PowerDNS Authoritative 4.x's API for server
// "localhost" and checks every request against it.
type fakePDNS struct {
	t        *testing.T
	mu       sync.Mutex
	zones    map[string]string              // id → kind
	rrsets   map[string]map[string][]string // zone id → "name TYPE" → contents
	notifies []string
	failWith string
}

type rrset struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	TTL        int      `json:"ttl,omitempty"`
	ChangeType string   `json:"changetype,omitempty"`
	Records    []record `json:"records"`
}

type record struct {
	Content  string `json:"content"`
	Disabled bool   `json:"disabled"`
}

func startFake(t *testing.T) (*fakePDNS, *httptest.Server) {
	f := &fakePDNS{t: t,
		zones: map[string]string{"example.org.": "Master", "native.test.": "Native"},
		rrsets: map[string]map[string][]string{
			"example.org.": {"example.org. NS": {"ns1.example.net.", "ns2.example.net."}},
			"native.test.": {},
		}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakePDNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("X-API-Key") != apiKey {
		dnstest.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized"})
		return
	}
	dnstest.WantHeader(f.t, r, "Accept", "application/json")
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/servers/localhost/zones")
	if !ok {
		dnstest.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "Not Found"})
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		var out []map[string]any
		for id, kind := range f.zones {
			out = append(out, map[string]any{"id": id, "name": id, "kind": kind, "url": "/api/v1/servers/localhost/zones/" + id})
		}
		dnstest.WriteJSON(w, http.StatusOK, out)
	case len(parts) >= 1 && f.zones[parts[0]] == "":
		dnstest.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "Could not find domain '" + parts[0] + "'"})
	case len(parts) == 1 && r.Method == http.MethodGet:
		sets := []rrset{}
		for key, contents := range f.rrsets[parts[0]] {
			name, typ, _ := strings.Cut(key, " ")
			s := rrset{Name: name, Type: typ, TTL: 60, Records: []record{}}
			for _, c := range contents {
				s.Records = append(s.Records, record{Content: c})
			}
			sets = append(sets, s)
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"id": parts[0], "name": parts[0], "kind": f.zones[parts[0]], "rrsets": sets, "serial": 1})
	case len(parts) == 1 && r.Method == http.MethodPatch:
		dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
		var body struct {
			RRsets []rrset `json:"rrsets"`
		}
		if !dnstest.ReadJSON(f.t, r, &body) {
			dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "bad body"})
			return
		}
		if f.failWith != "" {
			dnstest.WriteJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": f.failWith})
			return
		}
		for _, s := range body.RRsets {
			if s.Type != "TXT" || !strings.HasSuffix(s.Name, ".") || !strings.HasSuffix(s.Name, parts[0]) {
				f.t.Errorf("PATCH: bad rrset %+v", s)
			}
			key := s.Name + " " + s.Type
			switch s.ChangeType {
			case "REPLACE":
				if s.TTL <= 0 || len(s.Records) == 0 {
					f.t.Errorf("PATCH REPLACE without ttl or records: %+v", s)
				}
				var contents []string
				for _, rec := range s.Records {
					if !strings.HasPrefix(rec.Content, `"`) {
						dnstest.WriteJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Record " + s.Name + "/TXT '" + rec.Content + "': Parsing record content: Data field in DNS should start with quote (\") at position 0"})
						return
					}
					contents = append(contents, rec.Content)
				}
				f.rrsets[parts[0]][key] = contents
			case "DELETE":
				delete(f.rrsets[parts[0]], key)
			default:
				f.t.Errorf("PATCH: changetype %q", s.ChangeType)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 2 && parts[1] == "notify" && r.Method == http.MethodPut:
		f.notifies = append(f.notifies, parts[0])
		dnstest.WriteJSON(w, http.StatusOK, map[string]string{"result": "Notification queued"})
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *fakePDNS) txt(zone, fqdn string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.rrsets[zone][fqdn+" TXT"] {
		out = append(out, rest.Unquote(c))
	}
	return out
}

func newProvider(t *testing.T, url, key string) *powerdns.Provider {
	p, err := powerdns.New(powerdns.Config{APIURL: url, APIKey: secret.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPowerDNS(t *testing.T) {
	t.Parallel()
	f, srv := startFake(t)
	p := newProvider(t, srv.URL+"/", apiKey)
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.org", "_acme-challenge.www.example.org.", func() []string {
			return f.txt("example.org.", "_acme-challenge.www.example.org.")
		})
		if len(f.notifies) == 0 || slices.ContainsFunc(f.notifies, func(z string) bool { return z != "example.org." }) {
			t.Errorf("notifies = %v, want example.org. only", f.notifies)
		}
	})
	t.Run("native zone is not notified", func(t *testing.T) {
		before := len(f.notifies)
		if err := p.Present(t.Context(), "native.test", "_acme-challenge.native.test.", []string{"v"}); err != nil {
			t.Fatal(err)
		}
		if len(f.notifies) != before {
			t.Errorf("a Native zone was notified")
		}
	})
	t.Run("zones and name servers", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		slices.Sort(zones)
		if err != nil || !cmp.Equal(zones, []string{"example.org.", "native.test."}) {
			t.Errorf("Zones = %v, %v", zones, err)
		}
		ns, err := p.NameServers(t.Context(), "example.org")
		if err != nil || !cmp.Equal(ns, []string{"ns1.example.net.", "ns2.example.net."}) {
			t.Errorf("NameServers = %v, %v", ns, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		err := newProvider(t, srv.URL, "wrong-key").Present(t.Context(), "example.org", "_acme-challenge.example.org.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: Unauthorized") || strings.Contains(err.Error(), "wrong-key") {
			t.Errorf("wrong key: %v", err)
		}
		err = p.Present(t.Context(), "missing.test", "_acme-challenge.missing.test.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 404 Not Found: Could not find domain 'missing.test.'") {
			t.Errorf("missing zone: %v", err)
		}
		f.mu.Lock()
		f.failWith = "RRset _acme-challenge.example.org. IN TXT: Conflicts with pre-existing RRset"
		f.mu.Unlock()
		err = p.Present(t.Context(), "example.org", "_acme-challenge.example.org.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 422 Unprocessable Entity: RRset _acme-challenge.example.org. IN TXT: Conflicts with pre-existing RRset") {
			t.Errorf("refused PATCH: %v", err)
		}
	})
}
