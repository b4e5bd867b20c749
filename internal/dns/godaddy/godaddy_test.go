package godaddy_test

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

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/godaddy"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const (
	apiKey    = "gd-key"
	apiSecret = "gd-secret-0123456789"
)

// fakeGoDaddy answers like GoDaddy's Domains API v1.
type fakeGoDaddy struct {
	t       *testing.T
	mu      sync.Mutex
	domains []string // sorted
	records map[string][]map[string]any
	failPut string
}

func gdError(w http.ResponseWriter, status int, code, msg string) {
	dnstest.WriteJSON(w, status, map[string]string{"code": code, "message": msg})
}

func (f *fakeGoDaddy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "sso-key "+apiKey+":"+apiSecret {
		gdError(w, http.StatusUnauthorized, "UNABLE_TO_AUTHENTICATE", "Unable to authenticate request")
		return
	}
	dnstest.WantHeader(f.t, r, "Accept", "application/json")
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/domains"), "/")
	switch {
	case r.URL.Path == "/v1/domains" && r.Method == http.MethodGet:
		q := r.URL.Query()
		limit, err := strconv.Atoi(q.Get("limit"))
		if q.Get("statuses") != "ACTIVE" || err != nil || limit < 1 || limit > 1000 {
			f.t.Errorf("GET /v1/domains?%s", r.URL.RawQuery)
		}
		var out []map[string]any
		for _, d := range f.domains {
			if d > q.Get("marker") && len(out) < limit {
				out = append(out, map[string]any{"domain": d, "domainId": len(out) + 1, "status": "ACTIVE"})
			}
		}
		dnstest.WriteJSON(w, http.StatusOK, append([]map[string]any{}, out...))
	case len(parts) >= 2 && !slices.Contains(f.domains, parts[1]):
		gdError(w, http.StatusNotFound, "UNKNOWN_DOMAIN", "The given domain is not registered, or does not have a zone file")
	case len(parts) == 2 && r.Method == http.MethodGet:
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"domain": parts[1], "status": "ACTIVE", "nameServers": []string{"ns51.domaincontrol.com", "ns52.domaincontrol.com"}})
	case len(parts) == 5 && parts[2] == "records" && parts[3] == "TXT":
		key := parts[1] + "/" + parts[4]
		switch r.Method {
		case http.MethodGet:
			recs := f.records[key]
			if recs == nil {
				recs = []map[string]any{}
			}
			dnstest.WriteJSON(w, http.StatusOK, recs)
		case http.MethodPut:
			dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
			var in []struct {
				Data string `json:"data"`
				TTL  int    `json:"ttl"`
			}
			if !dnstest.ReadJSON(f.t, r, &in) {
				gdError(w, http.StatusUnprocessableEntity, "INVALID_BODY", "Request body doesn't fulfill schema")
				return
			}
			if f.failPut != "" {
				gdError(w, http.StatusUnprocessableEntity, "INVALID_BODY", f.failPut)
				return
			}
			var recs []map[string]any
			for _, rec := range in {
				if rec.TTL < 600 || rec.Data == "" {
					gdError(w, http.StatusUnprocessableEntity, "INVALID_BODY", "ttl must be at least 600")
					return
				}
				recs = append(recs, map[string]any{"data": rec.Data, "name": parts[4], "ttl": rec.TTL, "type": "TXT"})
			}
			f.records[key] = recs
			w.WriteHeader(http.StatusOK)
		case http.MethodDelete:
			if _, ok := f.records[key]; !ok {
				gdError(w, http.StatusNotFound, "NOT_FOUND", "Record not found")
				return
			}
			delete(f.records, key)
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		gdError(w, http.StatusNotFound, "NOT_FOUND", "no route")
	}
}

func (f *fakeGoDaddy) txt(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, rec := range f.records[key] {
		out = append(out, rec["data"].(string))
	}
	return out
}

func TestGoDaddy(t *testing.T) {
	t.Parallel()
	f := &fakeGoDaddy{t: t, records: map[string][]map[string]any{}}
	for i := range 1234 {
		f.domains = append(f.domains, fmt.Sprintf("d%04d.example", i))
	}
	f.domains = append(f.domains, "example.com")
	slices.Sort(f.domains)
	srv := httptest.NewServer(f)
	defer srv.Close()
	newProvider := func(sec string) *godaddy.Provider {
		p, err := godaddy.New(godaddy.Config{APIKey: apiKey, APISecret: secret.String(sec), Endpoint: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(apiSecret)
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string { return f.txt("example.com/_acme-challenge.www") })
	})
	t.Run("domains and name servers", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil || !cmp.Equal(zones, f.domains) {
			t.Errorf("Zones = %d, %v; want %d", len(zones), err, len(f.domains))
		}
		ns, err := p.NameServers(t.Context(), "example.com")
		if err != nil || !cmp.Equal(ns, []string{"ns51.domaincontrol.com", "ns52.domaincontrol.com"}) {
			t.Errorf("NameServers = %v, %v", ns, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := newProvider("wrong").Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: UNABLE_TO_AUTHENTICATE: Unable to authenticate request") || strings.Contains(err.Error(), "wrong") {
			t.Errorf("wrong secret: %v", err)
		}
		err = p.Present(t.Context(), "unknown.example", "_acme-challenge.unknown.example.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "UNKNOWN_DOMAIN: The given domain is not registered") {
			t.Errorf("unknown domain: %v", err)
		}
		f.mu.Lock()
		f.failPut = "Another record with the same attributes already exists"
		f.mu.Unlock()
		err = p.Present(t.Context(), "example.com", "_acme-challenge.example.com.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 422 Unprocessable Entity: INVALID_BODY: Another record with the same attributes already exists") {
			t.Errorf("refused PUT: %v", err)
		}
	})
}
