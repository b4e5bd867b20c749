package ionos_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/ionos"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
)

const key = "publicprefix.secretpart0123"

type record struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	RootName string `json:"rootName"`
	Type     string `json:"type"`
	Content  string `json:"content"`
	TTL      int    `json:"ttl"`
	Prio     int    `json:"prio"`
	Disabled bool   `json:"disabled"`
}

func TestIONOS(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var recs []record
	next := 0
	zoneID := "11af3414-ebba-11e9-8df5-66fbe8a334b4"
	ionosErr := func(w http.ResponseWriter, status int, code, msg string) {
		dnstest.WriteJSON(w, status, []map[string]string{{"code": code, "message": msg}})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-API-Key") != key {
			ionosErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "The customer is not authorized to do this operation.")
			return
		}
		switch {
		case r.URL.Path == "/dns/v1/zones" && r.Method == http.MethodGet:
			dnstest.WriteJSON(w, http.StatusOK, []map[string]string{{"name": "example.com", "id": zoneID, "type": "NATIVE"}, {"name": "example.org", "id": "other", "type": "NATIVE"}})
		case r.URL.Path == "/dns/v1/zones/"+zoneID && r.Method == http.MethodGet:
			q := r.URL.Query()
			if q.Get("recordType") != "TXT" || q.Get("recordName") == "" {
				t.Errorf("GET zone %s", r.URL.RawQuery)
			}
			out := []record{}
			for _, rc := range recs {
				if rc.Name == q.Get("recordName") {
					out = append(out, rc)
				}
			}
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"name": "example.com", "id": zoneID, "type": "NATIVE", "records": out})
		case r.URL.Path == "/dns/v1/zones/"+zoneID+"/records" && r.Method == http.MethodPost:
			var in []struct {
				Name     string `json:"name"`
				Type     string `json:"type"`
				Content  string `json:"content"`
				TTL      int    `json:"ttl"`
				Prio     int    `json:"prio"`
				Disabled bool   `json:"disabled"`
			}
			if !dnstest.ReadJSON(t, r, &in) {
				ionosErr(w, http.StatusBadRequest, "INVALID_RECORD", "Record is invalid.")
				return
			}
			var created []record
			for _, x := range in {
				if x.Content == "refuse" {
					ionosErr(w, http.StatusBadRequest, "RECORD_VALIDATION_ERROR", "Record content is invalid.")
					return
				}
				next++
				rc := record{ID: fmt.Sprintf("rec-%d", next), Name: x.Name, RootName: "example.com", Type: x.Type, Content: `"` + x.Content + `"`, TTL: x.TTL}
				recs = append(recs, rc)
				created = append(created, rc)
			}
			dnstest.WriteJSON(w, http.StatusCreated, created)
		case strings.HasPrefix(r.URL.Path, "/dns/v1/zones/"+zoneID+"/records/") && r.Method == http.MethodDelete:
			id := strings.TrimPrefix(r.URL.Path, "/dns/v1/zones/"+zoneID+"/records/")
			i := slices.IndexFunc(recs, func(x record) bool { return x.ID == id })
			if i < 0 {
				ionosErr(w, http.StatusNotFound, "RECORD_NOT_FOUND", "Record does not exist.")
				return
			}
			recs = slices.Delete(recs, i, i+1)
			w.WriteHeader(http.StatusOK)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	}))
	defer srv.Close()
	p, err := ionos.New(ionos.Config{APIKey: key, Endpoint: srv.URL + "/dns/v1"})
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, rc := range recs {
			out = append(out, rest.Unquote(rc.Content))
		}
		return out
	})
	if zones, err := p.Zones(t.Context()); err != nil || !cmp.Equal(zones, []string{"example.com", "example.org"}) {
		t.Errorf("Zones = %v, %v", zones, err)
	}
	if err := p.Present(t.Context(), "example.com", "_acme-challenge.example.com.", []string{"refuse"}); err == nil || !strings.Contains(err.Error(), "HTTP 400 Bad Request: RECORD_VALIDATION_ERROR: Record content is invalid.") {
		t.Errorf("refused: %v", err)
	}
	bad, _ := ionos.New(ionos.Config{APIKey: "a.b", Endpoint: srv.URL + "/dns/v1"})
	if _, err := bad.Zones(t.Context()); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED: The customer is not authorized") {
		t.Errorf("wrong key: %v", err)
	}
}
