package porkbun_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/porkbun"
	"github.com/certkeeper/certkeeper/internal/secret"
)

func TestPorkbun(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	type rec struct{ id, name, content string }
	var recs []rec
	next := 100
	var domains []string
	for i := range 1500 {
		domains = append(domains, fmt.Sprintf("d%04d.example", i))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var body map[string]string
		if r.Method != http.MethodPost || !dnstest.ReadJSON(t, r, &body) {
			dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"status": "ERROR", "message": "bad request"})
			return
		}
		if body["apikey"] != "pk1_key" || body["secretapikey"] != "sk1_secret" {
			dnstest.WriteJSON(w, http.StatusForbidden, map[string]string{"status": "ERROR", "message": "Invalid API key. (002)"})
			return
		}
		path := strings.TrimPrefix(r.URL.Path, "/api/json/v3")
		switch {
		case path == "/domain/listAll":
			start, _ := strconv.Atoi(body["start"])
			var out []map[string]string
			for _, d := range domains[min(start, len(domains)):min(start+1000, len(domains))] {
				out = append(out, map[string]string{"domain": d, "status": "ACTIVE"})
			}
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"status": "SUCCESS", "domains": out})
		case path == "/domain/getNs/example.com":
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"status": "SUCCESS", "ns": []string{"curitiba.ns.porkbun.com", "fortaleza.ns.porkbun.com"}})
		case strings.HasPrefix(path, "/dns/retrieveByNameType/example.com/TXT"):
			name := strings.TrimPrefix(strings.TrimPrefix(path, "/dns/retrieveByNameType/example.com/TXT"), "/")
			full := "example.com"
			if name != "" {
				full = name + ".example.com"
			}
			out := []map[string]string{}
			for _, rc := range recs {
				if rc.name == full {
					out = append(out, map[string]string{"id": rc.id, "name": rc.name, "type": "TXT", "content": rc.content, "ttl": "600", "prio": "0", "notes": ""})
				}
			}
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"status": "SUCCESS", "records": out})
		case path == "/dns/create/example.com":
			if body["type"] != "TXT" || body["ttl"] != "600" {
				t.Errorf("create %v", body)
			}
			if body["content"] == "refuse" {
				dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"status": "ERROR", "message": "Edit error: We were unable to create the DNS record."})
				return
			}
			next++
			full := body["name"] + ".example.com"
			recs = append(recs, rec{strconv.Itoa(next), full, body["content"]})
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"status": "SUCCESS", "id": next})
		case strings.HasPrefix(path, "/dns/delete/example.com/"):
			id := strings.TrimPrefix(path, "/dns/delete/example.com/")
			for i, rc := range recs {
				if rc.id == id {
					recs = append(recs[:i], recs[i+1:]...)
					dnstest.WriteJSON(w, http.StatusOK, map[string]string{"status": "SUCCESS"})
					return
				}
			}
			dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"status": "ERROR", "message": "Invalid record ID."})
		default:
			t.Errorf("unexpected %s", path)
		}
	}))
	defer srv.Close()
	p, err := porkbun.New(porkbun.Config{APIKey: "pk1_key", SecretAPIKey: "sk1_secret", Endpoint: srv.URL + "/api/json/v3"})
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, rc := range recs {
			if rc.name == "_acme-challenge.www.example.com" {
				out = append(out, rc.content)
			}
		}
		return out
	})
	if zones, err := p.Zones(t.Context()); err != nil || !cmp.Equal(zones, domains) {
		t.Errorf("Zones = %d, %v", len(zones), err)
	}
	if ns, err := p.NameServers(t.Context(), "example.com"); err != nil || len(ns) != 2 {
		t.Errorf("NameServers = %v, %v", ns, err)
	}
	if err := p.Present(t.Context(), "example.com", "_acme-challenge.example.com.", []string{"refuse"}); err == nil || !strings.Contains(err.Error(), "We were unable to create the DNS record") {
		t.Errorf("refused: %v", err)
	}
	bad, _ := porkbun.New(porkbun.Config{APIKey: "pk1_key", SecretAPIKey: secret.String("wrong"), Endpoint: srv.URL + "/api/json/v3"})
	if _, err := bad.Zones(t.Context()); err == nil || !strings.Contains(err.Error(), "HTTP 403 Forbidden: Invalid API key. (002)") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong key: %v", err)
	}
}
