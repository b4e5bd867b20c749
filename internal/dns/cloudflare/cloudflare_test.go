package cloudflare_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/cloudflare"
	"github.com/certkeeper/certkeeper/internal/dns/cloudflare/cloudflaretest"
	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
)

const token = "cf-token-0123456789"

func newProvider(t *testing.T, endpoint, tok string) *cloudflare.Provider {
	t.Helper()
	p, err := cloudflare.New(cloudflare.Config{APIToken: secretOf(tok), Endpoint: endpoint, TTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRRset(t *testing.T) {
	t.Parallel()
	srv := cloudflaretest.Start(t, token, cloudflaretest.Zone{ID: "zone-1", Name: "example.com"})
	p := newProvider(t, srv.Endpoint(), token)
	dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
		return srv.TXT("_acme-challenge.www.example.com")
	})
}

func TestZonesPaginationAndNameServers(t *testing.T) {
	t.Parallel()
	var zones []cloudflaretest.Zone
	var want []string
	for i := range 73 {
		name := fmt.Sprintf("zone%02d.example", i)
		zones = append(zones, cloudflaretest.Zone{ID: fmt.Sprintf("id-%d", i), Name: name, NameServers: []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"}})
		want = append(want, name)
	}
	srv := cloudflaretest.Start(t, token, zones...)
	p := newProvider(t, srv.Endpoint(), token)
	got, err := p.Zones(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Zones (-want +got):\n%s", diff)
	}
	ns, err := p.NameServers(t.Context(), "zone07.example")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"}, ns); diff != "" {
		t.Errorf("NameServers (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	srv := cloudflaretest.Start(t, token, cloudflaretest.Zone{ID: "zone-1", Name: "example.com"})
	tests := []struct {
		name  string
		token string
		fail  string
		want  string
	}{
		{"wrong token", "wrong-token-000000", "", "HTTP 403 Forbidden: 10000: Authentication error"},
		{"record refused", token, "Content for TXT record is invalid.", "creating TXT record: POST " + srv.Endpoint() + "/zones/zone-1/dns_records: HTTP 400 Bad Request: 1004: Content for TXT record is invalid."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.FailCreate = tt.fail
			err := newProvider(t, srv.Endpoint(), tt.token).Present(t.Context(), "example.com", "_acme-challenge.example.com.", []string{"v"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Present = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q holds the token", err)
			}
		})
	}
	_, err := newProvider(t, srv.Endpoint(), token).NameServers(t.Context(), "missing.example")
	if err == nil || !strings.Contains(err.Error(), "zone missing.example is not in this Cloudflare account") {
		t.Errorf("NameServers of an unknown zone = %v", err)
	}
}

// TestLegacyKey sends the e-mail and global API key headers.
func TestLegacyKey(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Email") != "me@example.com" || r.Header.Get("X-Auth-Key") != "global-key" || r.Header.Get("Authorization") != "" {
			t.Errorf("headers = %v", r.Header)
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "errors": []any{}, "result": []any{},
			"result_info": map[string]int{"page": 1, "total_pages": 1}})
	}))
	defer srv.Close()
	p, err := cloudflare.New(cloudflare.Config{Email: "me@example.com", APIKey: "global-key", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Zones(t.Context()); err != nil {
		t.Fatal(err)
	}
}
