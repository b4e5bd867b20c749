package linode_test

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
	"github.com/certkeeper/certkeeper/internal/dns/linode"
)

type record struct {
	ID     int    `json:"id"`
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target string `json:"target"`
	TTL    int    `json:"ttl_sec"`
}

func TestLinode(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var domains []map[string]any
	var want []string
	for i := range 1100 {
		d := fmt.Sprintf("d%04d.example", i)
		domains = append(domains, map[string]any{"id": i + 1, "domain": d, "type": "master", "status": "active"})
		want = append(want, d)
	}
	exampleID := len(domains)
	var recs []record
	for i := range 600 { // a busy zone: the records come in two pages
		recs = append(recs, record{ID: 10000 + i, Type: "A", Name: fmt.Sprintf("host%d", i), Target: "192.0.2.1", TTL: 300})
	}
	nextID := 20000
	page := func(r *http.Request, n int) (int, int, map[string]any) {
		pg, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		if pg < 1 || size < 25 || size > 500 {
			t.Errorf("%s: page=%d page_size=%d", r.URL, pg, size)
		}
		lo, hi := min((pg-1)*size, n), min(pg*size, n)
		return lo, hi, map[string]any{"page": pg, "pages": max(1, (n+size-1)/size), "results": n}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer linode-token" {
			dnstest.WriteJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]string{{"reason": "Invalid Token"}}})
			return
		}
		switch {
		case r.URL.Path == "/v4/domains" && r.Method == http.MethodGet:
			lo, hi, out := page(r, len(domains))
			out["data"] = domains[lo:hi]
			dnstest.WriteJSON(w, http.StatusOK, out)
		case r.URL.Path == "/v4/domains/"+strconv.Itoa(exampleID)+"/records" && r.Method == http.MethodGet:
			lo, hi, out := page(r, len(recs))
			out["data"] = recs[lo:hi]
			dnstest.WriteJSON(w, http.StatusOK, out)
		case r.URL.Path == "/v4/domains/"+strconv.Itoa(exampleID)+"/records" && r.Method == http.MethodPost:
			var in struct {
				Type   string `json:"type"`
				Name   string `json:"name"`
				Target string `json:"target"`
				TTL    int    `json:"ttl_sec"`
			}
			if !dnstest.ReadJSON(t, r, &in) || in.Type != "TXT" || strings.HasSuffix(in.Name, "d1099.example") {
				dnstest.WriteJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]string{{"reason": "Invalid record", "field": "name"}}})
				return
			}
			if in.Target == "refuse" {
				dnstest.WriteJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]string{{"field": "target", "reason": "Target must be 1-65535 characters"}}})
				return
			}
			nextID++
			rec := record{ID: nextID, Type: in.Type, Name: in.Name, Target: in.Target, TTL: in.TTL}
			recs = append(recs, rec)
			dnstest.WriteJSON(w, http.StatusOK, rec)
		case strings.HasPrefix(r.URL.Path, "/v4/domains/"+strconv.Itoa(exampleID)+"/records/") && r.Method == http.MethodDelete:
			id, _ := strconv.Atoi(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			i := slices.IndexFunc(recs, func(x record) bool { return x.ID == id })
			if i < 0 {
				dnstest.WriteJSON(w, http.StatusNotFound, map[string]any{"errors": []map[string]string{{"reason": "Not found"}}})
				return
			}
			recs = slices.Delete(recs, i, i+1)
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{})
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	}))
	defer srv.Close()
	p, err := linode.New(linode.Config{APIToken: "linode-token", Endpoint: srv.URL + "/v4"})
	if err != nil {
		t.Fatal(err)
	}
	zone := fmt.Sprintf("d%04d.example", exampleID-1)
	dnstest.Scenario(t, p, zone, "_acme-challenge.www."+zone+".", func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, r := range recs {
			if r.Type == "TXT" && r.Name == "_acme-challenge.www" {
				out = append(out, r.Target)
			}
		}
		return out
	})
	if zones, err := p.Zones(t.Context()); err != nil || !cmp.Equal(zones, want) {
		t.Errorf("Zones = %d, %v", len(zones), err)
	}
	err = p.Present(t.Context(), zone, "_acme-challenge."+zone+".", []string{"refuse"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 400 Bad Request: target: Target must be 1-65535 characters") {
		t.Errorf("refused: %v", err)
	}
	bad, _ := linode.New(linode.Config{APIToken: "nope", Endpoint: srv.URL + "/v4"})
	if _, err := bad.Zones(t.Context()); err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: Invalid Token") {
		t.Errorf("wrong token: %v", err)
	}
}
