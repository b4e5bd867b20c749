package digitalocean_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/digitalocean"
	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const token = "dop_v1_0123456789abcdef"

type record struct {
	ID       int     `json:"id"`
	Type     string  `json:"type"`
	Name     string  `json:"name"`
	Data     string  `json:"data"`
	TTL      int     `json:"ttl"`
	Priority *int    `json:"priority"`
	Port     *int    `json:"port"`
	Weight   *int    `json:"weight"`
	Flags    *int    `json:"flags"`
	Tag      *string `json:"tag"`
}

// fakeDO answers like DigitalOcean's API v2 and checks every request.
type fakeDO struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	domains []string
	records map[string][]record // domain → records
	nextID  int
	failMsg string
}

func startFake(t *testing.T, domains ...string) *fakeDO {
	f := &fakeDO{t: t, domains: domains, records: map[string][]record{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func fail(w http.ResponseWriter, status int, id, msg string) {
	dnstest.WriteJSON(w, status, map[string]string{"id": id, "message": msg, "request_id": "4d9d8375-3c56-4925-a3e7-eb137fed17e9"})
}

// page slices n items by the page and per_page parameters and returns the
// links object.
func (f *fakeDO) page(r *http.Request, n int) (lo, hi int, links map[string]any) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if page < 1 || per < 1 || per > 200 {
		f.t.Errorf("%s: page=%q per_page=%q", r.URL, r.URL.Query().Get("page"), r.URL.Query().Get("per_page"))
		page, per = 1, 20
	}
	lo, hi = min((page-1)*per, n), min(page*per, n)
	pages := map[string]string{}
	if hi < n {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page+1))
		pages["next"] = f.srv.URL + r.URL.Path + "?" + q.Encode()
	}
	return lo, hi, map[string]any{"pages": pages}
}

func (f *fakeDO) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+token {
		fail(w, http.StatusUnauthorized, "unauthorized", "Unable to authenticate you.")
		return
	}
	dnstest.WantHeader(f.t, r, "Accept", "application/json")
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
	switch {
	case r.URL.Path == "/v2/domains" && r.Method == http.MethodGet:
		lo, hi, links := f.page(r, len(f.domains))
		var out []map[string]any
		for _, d := range f.domains[lo:hi] {
			out = append(out, map[string]any{"name": d, "ttl": 1800, "zone_file": "$ORIGIN " + d + ".\n"})
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"domains": out, "links": links, "meta": map[string]int{"total": len(f.domains)}})
	case len(parts) >= 3 && parts[0] == "domains" && parts[2] == "records" && !slices.Contains(f.domains, parts[1]):
		fail(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
	case len(parts) == 3 && r.Method == http.MethodGet:
		q := r.URL.Query()
		if q.Get("type") != "TXT" || !strings.HasSuffix(q.Get("name"), parts[1]) {
			f.t.Errorf("GET records: type=%q name=%q (name must be fully qualified)", q.Get("type"), q.Get("name"))
		}
		var match []record
		for _, rec := range f.records[parts[1]] {
			full := rec.Name + "." + parts[1]
			if rec.Name == "@" {
				full = parts[1]
			}
			if rec.Type == q.Get("type") && full == q.Get("name") {
				match = append(match, rec)
			}
		}
		lo, hi, links := f.page(r, len(match))
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"domain_records": append([]record{}, match[lo:hi]...), "links": links, "meta": map[string]int{"total": len(match)}})
	case len(parts) == 3 && r.Method == http.MethodPost:
		dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
		var in struct {
			Type string `json:"type"`
			Name string `json:"name"`
			Data string `json:"data"`
			TTL  int    `json:"ttl"`
		}
		if !dnstest.ReadJSON(f.t, r, &in) {
			fail(w, http.StatusBadRequest, "bad_request", "invalid body")
			return
		}
		if f.failMsg != "" {
			fail(w, http.StatusUnprocessableEntity, "unprocessable_entity", f.failMsg)
			return
		}
		if in.Type != "TXT" || in.Name == "" || strings.HasSuffix(in.Name, parts[1]) || in.TTL < 30 {
			f.t.Errorf("POST record: %+v (name must be relative, ttl ≥ 30)", in)
		}
		f.nextID++
		rec := record{ID: f.nextID, Type: in.Type, Name: in.Name, Data: in.Data, TTL: in.TTL}
		f.records[parts[1]] = append(f.records[parts[1]], rec)
		dnstest.WriteJSON(w, http.StatusCreated, map[string]any{"domain_record": rec})
	case len(parts) == 4 && r.Method == http.MethodDelete:
		id, _ := strconv.Atoi(parts[3])
		for i, rec := range f.records[parts[1]] {
			if rec.ID == id {
				f.records[parts[1]] = slices.Delete(f.records[parts[1]], i, i+1)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		fail(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		fail(w, http.StatusMethodNotAllowed, "method_not_allowed", "no")
	}
}

func (f *fakeDO) txt(domain, name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, rec := range f.records[domain] {
		if rec.Name == name {
			out = append(out, rec.Data)
		}
	}
	return out
}

func newProvider(t *testing.T, endpoint, tok string) *digitalocean.Provider {
	p, err := digitalocean.New(digitalocean.Config{APIToken: secret.String(tok), Endpoint: endpoint, TTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDigitalOcean(t *testing.T) {
	t.Parallel()
	var domains []string
	for i := range 450 {
		domains = append(domains, fmt.Sprintf("d%03d.example", i))
	}
	domains = append(domains, "example.com")
	f := startFake(t, domains...)
	p := newProvider(t, f.srv.URL, token)
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string { return f.txt("example.com", "_acme-challenge.www") })
	})
	t.Run("apex", func(t *testing.T) {
		if err := p.Present(t.Context(), "example.com", "example.com.", []string{"apex"}); err != nil {
			t.Fatal(err)
		}
		if got := f.txt("example.com", "@"); !cmp.Equal(got, []string{"apex"}) {
			t.Errorf("apex TXT = %v", got)
		}
	})
	t.Run("zones across pages", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil || !cmp.Equal(zones, domains) {
			t.Errorf("Zones = %d zones, %v; want %d", len(zones), err, len(domains))
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := newProvider(t, f.srv.URL, "wrong").Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: unauthorized: Unable to authenticate you.") {
			t.Errorf("wrong token: %v", err)
		}
		f.mu.Lock()
		f.failMsg = "Data needs to end with a dot (.)"
		f.mu.Unlock()
		err = p.Present(t.Context(), "example.com", "_acme-challenge.x.example.com.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 422 Unprocessable Entity: unprocessable_entity: Data needs to end with a dot (.)") {
			t.Errorf("refused record: %v", err)
		}
	})
}
