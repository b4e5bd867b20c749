package desec_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/desec"
	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

func TestDeSEC(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	sets := map[string][]string{} // domain/subname → records
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Token desec-token-0123" {
			dnstest.WriteJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Invalid token."})
			return
		}
		parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/"), "/")
		switch {
		case r.URL.Path == "/api/v1/domains/" && r.Method == http.MethodGet:
			dnstest.WriteJSON(w, http.StatusOK, []map[string]any{{"name": "example.com", "minimum_ttl": 3600}, {"name": "example.org", "minimum_ttl": 3600}})
		case len(parts) == 5 && parts[2] == "rrsets" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/"):
			key := parts[1] + "/" + strings.TrimPrefix(parts[3], "@")
			recs, ok := sets[key]
			if !ok {
				dnstest.WriteJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
				return
			}
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"subname": parts[3], "type": "TXT", "ttl": 3600, "records": recs})
		case len(parts) == 3 && parts[2] == "rrsets" && r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/"):
			var in []struct {
				Subname string   `json:"subname"`
				Type    string   `json:"type"`
				TTL     int      `json:"ttl"`
				Records []string `json:"records"`
			}
			if !dnstest.ReadJSON(t, r, &in) {
				dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"detail": "bad body"})
				return
			}
			for _, s := range in {
				if s.TTL < 3600 {
					dnstest.WriteJSON(w, http.StatusBadRequest, []map[string][]string{{"ttl": {"Ensure this value is greater than or equal to 3600."}}})
					return
				}
				if len(s.Records) == 0 {
					delete(sets, parts[1]+"/"+s.Subname)
				} else {
					sets[parts[1]+"/"+s.Subname] = s.Records
				}
			}
			dnstest.WriteJSON(w, http.StatusOK, in)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	}))
	defer srv.Close()
	p, err := desec.New(desec.Config{APIToken: "desec-token-0123", Endpoint: srv.URL + "/api/v1"})
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, v := range sets["example.com/_acme-challenge.www"] {
			out = append(out, rest.Unquote(v))
		}
		return out
	})
	if zones, err := p.Zones(t.Context()); err != nil || !cmp.Equal(zones, []string{"example.com", "example.org"}) {
		t.Errorf("Zones = %v, %v", zones, err)
	}
	bad, _ := desec.New(desec.Config{APIToken: secret.String("nope"), Endpoint: srv.URL + "/api/v1"})
	if _, err := bad.Zones(t.Context()); err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: Invalid token.") {
		t.Errorf("wrong token: %v", err)
	}
}
