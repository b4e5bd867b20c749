package dnsmadeeasy_test

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the API's signature
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnsmadeeasy"
	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
)

const (
	apiKey    = "1c1a3c91-4770-4ce7-96f4-54c0eb0e457a"
	apiSecret = "c9b5625f-9834-4ff8-baba-4ed5f32cae55"
)

type record struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Value       string `json:"value"`
	TTL         int    `json:"ttl"`
	GtdLocation string `json:"gtdLocation"`
}

func TestDNSMadeEasy(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var recs []record
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		date := r.Header.Get("x-dnsme-requestDate")
		when, err := time.Parse(http.TimeFormat, date)
		m := hmac.New(sha1.New, []byte(apiSecret))
		m.Write([]byte(date))
		if r.Header.Get("x-dnsme-apiKey") != apiKey || err != nil || time.Since(when) > time.Hour ||
			r.Header.Get("x-dnsme-hmac") != hex.EncodeToString(m.Sum(nil)) {
			dnstest.WriteJSON(w, http.StatusForbidden, map[string]any{"error": []string{"HMAC validation failed."}})
			return
		}
		switch {
		case r.URL.Path == "/V2.0/dns/managed/" && r.Method == http.MethodGet:
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			all := []map[string]any{{"id": 1119443, "name": "example.com"}, {"id": 2, "name": "example.org"}, {"id": 3, "name": "example.net"}}
			rows, _ := strconv.Atoi(r.URL.Query().Get("rows"))
			if rows < 1 {
				t.Errorf("rows=%q", r.URL.Query().Get("rows"))
				return
			}
			rows = min(rows, 2) // this fake pages by two
			lo, hi := min(page*rows, len(all)), min((page+1)*rows, len(all))
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"data": all[lo:hi], "page": page, "totalPages": (len(all) + rows - 1) / rows, "totalRecords": len(all)})
		case r.URL.Path == "/V2.0/dns/managed/1119443/records" && r.Method == http.MethodGet:
			q := r.URL.Query()
			out := []record{}
			for _, rc := range recs {
				if rc.Name == q.Get("recordName") && rc.Type == q.Get("type") {
					out = append(out, rc)
				}
			}
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"data": out, "page": 0, "totalPages": 1, "totalRecords": len(out)})
		case r.URL.Path == "/V2.0/dns/managed/1119443/records" && r.Method == http.MethodPost:
			var in struct {
				Name        string `json:"name"`
				Type        string `json:"type"`
				Value       string `json:"value"`
				TTL         int    `json:"ttl"`
				GtdLocation string `json:"gtdLocation"`
			}
			if !dnstest.ReadJSON(t, r, &in) || in.GtdLocation != "DEFAULT" || !strings.HasPrefix(in.Value, `"`) {
				dnstest.WriteJSON(w, http.StatusBadRequest, map[string]any{"error": []string{"Record value must be quoted."}})
				return
			}
			next++
			rc := record{ID: next, Name: in.Name, Type: in.Type, Value: in.Value, TTL: in.TTL, GtdLocation: in.GtdLocation}
			recs = append(recs, rc)
			dnstest.WriteJSON(w, http.StatusCreated, rc)
		case strings.HasPrefix(r.URL.Path, "/V2.0/dns/managed/1119443/records/") && r.Method == http.MethodDelete:
			id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/V2.0/dns/managed/1119443/records/"))
			i := slices.IndexFunc(recs, func(x record) bool { return x.ID == id })
			if i < 0 {
				dnstest.WriteJSON(w, http.StatusNotFound, map[string]any{"error": []string{"Record not found."}})
				return
			}
			recs = slices.Delete(recs, i, i+1)
			w.WriteHeader(http.StatusOK)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	}))
	defer srv.Close()
	p, err := dnsmadeeasy.New(dnsmadeeasy.Config{APIKey: apiKey, APISecret: apiSecret, Endpoint: srv.URL + "/V2.0"})
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, rc := range recs {
			if rc.Name == "_acme-challenge.www" {
				out = append(out, rest.Unquote(rc.Value))
			}
		}
		return out
	})
	if zones, err := p.Zones(t.Context()); err != nil || !cmp.Equal(zones, []string{"example.com", "example.org", "example.net"}) {
		t.Errorf("Zones = %v, %v", zones, err)
	}
	bad, _ := dnsmadeeasy.New(dnsmadeeasy.Config{APIKey: apiKey, APISecret: "wrong", Endpoint: srv.URL + "/V2.0"})
	if _, err := bad.Zones(t.Context()); err == nil || !strings.Contains(err.Error(), "HTTP 403 Forbidden: HMAC validation failed.") {
		t.Errorf("wrong secret: %v", err)
	}
}
