package hetzner_test

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
	"github.com/certkeeper/certkeeper/internal/dns/hetzner"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const token = "hetzner-token-0123456789"

// fakeHetzner answers like the Hetzner Cloud API's zones and actions.
type fakeHetzner struct {
	t          *testing.T
	mu         sync.Mutex
	zones      []string
	rrsets     map[string][]string // "zone/name" → quoted values
	actions    map[int]int         // id → polls left before success
	nextAction int
	failAction bool
}

type value struct {
	Value   string `json:"value"`
	Comment string `json:"comment,omitempty"`
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	dnstest.WriteJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "details": map[string]any{}}})
}

func (f *fakeHetzner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+token {
		apiError(w, http.StatusUnauthorized, "unauthorized", "unable to authenticate")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/"), "/")
	switch {
	case r.URL.Path == "/v1/zones" && r.Method == http.MethodGet:
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		if page < 1 || per < 1 || per > 100 {
			f.t.Errorf("GET /v1/zones: page=%d per_page=%d", page, per)
			return
		}
		var match []string
		for _, z := range f.zones {
			if n := r.URL.Query().Get("name"); n == "" || n == z {
				match = append(match, z)
			}
		}
		lo, hi := min((page-1)*per, len(match)), min(page*per, len(match))
		var zones []map[string]any
		for i, z := range match[lo:hi] {
			zones = append(zones, map[string]any{"id": lo + i + 1, "name": z, "mode": "primary",
				"authoritative_nameservers": map[string]any{"assigned": []string{"hydrogen.ns.hetzner.com.", "oxygen.ns.hetzner.com."}}})
		}
		var next any
		if hi < len(match) {
			next = page + 1
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"zones": zones,
			"meta": map[string]any{"pagination": map[string]any{"page": page, "per_page": per, "next_page": next, "total_entries": len(match)}}})
	case len(parts) == 2 && parts[0] == "actions" && r.Method == http.MethodGet:
		id, _ := strconv.Atoi(parts[1])
		left, ok := f.actions[id]
		if !ok {
			apiError(w, http.StatusNotFound, "not_found", "action not found")
			return
		}
		status := "running"
		var actionErr any
		if left == 0 {
			status = "success"
			if f.failAction {
				status, actionErr = "error", map[string]string{"code": "action_failed", "message": "Action failed"}
			}
		} else {
			f.actions[id] = left - 1
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"action": map[string]any{"id": id, "status": status, "error": actionErr}})
	case len(parts) >= 5 && parts[0] == "zones" && parts[2] == "rrsets" && parts[4] == "TXT":
		if !slices.Contains(f.zones, parts[1]) {
			apiError(w, http.StatusNotFound, "not_found", "zone not found")
			return
		}
		key := parts[1] + "/" + parts[3]
		switch {
		case len(parts) == 5 && r.Method == http.MethodGet:
			vals, ok := f.rrsets[key]
			if !ok {
				apiError(w, http.StatusNotFound, "not_found", "rrset not found")
				return
			}
			var recs []value
			for _, v := range vals {
				recs = append(recs, value{Value: v})
			}
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"rrset": map[string]any{"id": parts[3] + "/TXT", "name": parts[3], "type": "TXT", "ttl": 60, "records": recs}})
		case len(parts) == 7 && parts[5] == "actions" && r.Method == http.MethodPost:
			dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
			var body struct {
				TTL     *int    `json:"ttl"`
				Records []value `json:"records"`
			}
			if !dnstest.ReadJSON(f.t, r, &body) {
				apiError(w, http.StatusBadRequest, "invalid_input", "invalid body")
				return
			}
			for _, rec := range body.Records {
				if !strings.HasPrefix(rec.Value, `"`) {
					apiError(w, http.StatusUnprocessableEntity, "invalid_input", "invalid input in field 'records': TXT value must be quoted")
					return
				}
			}
			switch parts[6] {
			case "add_records":
				if body.TTL == nil || *body.TTL < 60 {
					f.t.Errorf("add_records without a valid ttl")
				}
				for _, rec := range body.Records {
					if !slices.Contains(f.rrsets[key], rec.Value) {
						f.rrsets[key] = append(f.rrsets[key], rec.Value)
					}
				}
			case "remove_records":
				if body.TTL != nil {
					f.t.Errorf("remove_records with a ttl")
				}
				f.rrsets[key] = slices.DeleteFunc(f.rrsets[key], func(v string) bool {
					return slices.ContainsFunc(body.Records, func(rec value) bool { return rec.Value == v })
				})
				if len(f.rrsets[key]) == 0 {
					delete(f.rrsets, key)
				}
			default:
				f.t.Errorf("unknown action %s", parts[6])
			}
			f.nextAction++
			f.actions[f.nextAction] = 1
			dnstest.WriteJSON(w, http.StatusCreated, map[string]any{"action": map[string]any{"id": f.nextAction, "command": parts[6], "status": "running", "error": nil}})
		default:
			f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		apiError(w, http.StatusNotFound, "not_found", "not found")
	}
}

func (f *fakeHetzner) txt(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, v := range f.rrsets[key] {
		out = append(out, rest.Unquote(v))
	}
	return out
}

func TestHetzner(t *testing.T) {
	t.Parallel()
	f := &fakeHetzner{t: t, rrsets: map[string][]string{}, actions: map[int]int{}}
	for i := range 120 {
		f.zones = append(f.zones, fmt.Sprintf("z%03d.example", i))
	}
	f.zones = append(f.zones, "example.com")
	srv := httptest.NewServer(f)
	defer srv.Close()
	newProvider := func(tok string) *hetzner.Provider {
		p, err := hetzner.New(hetzner.Config{APIToken: secret.String(tok), Endpoint: srv.URL + "/v1", TTL: 60})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(token)
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string { return f.txt("example.com/_acme-challenge.www") })
		if err := p.Present(t.Context(), "example.com", "example.com.", []string{"apex"}); err != nil || !cmp.Equal(f.txt("example.com/@"), []string{"apex"}) {
			t.Errorf("apex: %v, %v", err, f.txt("example.com/@"))
		}
	})
	t.Run("zones and name servers", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil || !cmp.Equal(zones, f.zones) {
			t.Errorf("Zones = %d, %v; want %d", len(zones), err, len(f.zones))
		}
		ns, err := p.NameServers(t.Context(), "example.com.")
		if err != nil || !cmp.Equal(ns, []string{"hydrogen.ns.hetzner.com.", "oxygen.ns.hetzner.com."}) {
			t.Errorf("NameServers = %v, %v", ns, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		err := newProvider("bad-token").Present(t.Context(), "example.com", "_acme-challenge.example.com.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: unauthorized: unable to authenticate") {
			t.Errorf("wrong token: %v", err)
		}
		f.mu.Lock()
		f.failAction = true
		f.mu.Unlock()
		err = p.Present(t.Context(), "example.com", "_acme-challenge.fail.example.com.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "adding TXT records at _acme-challenge.fail.example.com.: action") || !strings.Contains(err.Error(), "action_failed: Action failed") {
			t.Errorf("failed action: %v", err)
		}
	})
}
