package gandi_test

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
	"github.com/certkeeper/certkeeper/internal/dns/gandi"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const pat = "gandi-pat-0123456789"

func TestGandi(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var domains []string
	for i := range 250 {
		domains = append(domains, fmt.Sprintf("d%03d.example", i))
	}
	domains = append(domains, "example.com")
	sets := map[string][]string{}
	gErr := func(w http.ResponseWriter, code int, cause, msg string) {
		dnstest.WriteJSON(w, code, map[string]any{"code": code, "message": msg, "object": "HTTP" + strconv.Itoa(code), "cause": cause})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+pat {
			gErr(w, http.StatusUnauthorized, "Unauthorized", "The server could not verify that you authorized to access the document you requested.")
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v5/livedns/"), "/")
		switch {
		case r.URL.Path == "/v5/livedns/domains" && r.Method == http.MethodGet:
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
			if page < 1 || per < 1 {
				t.Errorf("GET domains %s", r.URL.RawQuery)
				return
			}
			lo, hi := min((page-1)*per, len(domains)), min(page*per, len(domains))
			out := []map[string]string{}
			for _, d := range domains[lo:hi] {
				out = append(out, map[string]string{"fqdn": d, "domain_href": "https://api.gandi.net/v5/livedns/domains/" + d})
			}
			w.Header().Set("Total-Count", strconv.Itoa(len(domains)))
			dnstest.WriteJSON(w, http.StatusOK, out)
		case len(parts) == 3 && parts[2] == "nameservers":
			dnstest.WriteJSON(w, http.StatusOK, []string{"ns-1-a.gandi.net", "ns-2-b.gandi.net"})
		case len(parts) == 5 && parts[2] == "records" && parts[4] == "TXT":
			key := parts[1] + "/" + parts[3]
			switch r.Method {
			case http.MethodGet:
				v, ok := sets[key]
				if !ok {
					gErr(w, http.StatusNotFound, "Not Found", "Can't find the DNS record "+parts[3]+"/TXT in the zone")
					return
				}
				dnstest.WriteJSON(w, http.StatusOK, map[string]any{"rrset_name": parts[3], "rrset_type": "TXT", "rrset_ttl": 300, "rrset_values": v})
			case http.MethodPut:
				var in struct {
					Values []string `json:"rrset_values"`
					TTL    int      `json:"rrset_ttl"`
				}
				if !dnstest.ReadJSON(t, r, &in) || in.TTL < 300 || len(in.Values) == 0 {
					gErr(w, http.StatusBadRequest, "Bad Request", "rrset_ttl: must be at least 300")
					return
				}
				for _, v := range in.Values {
					if !strings.HasPrefix(v, `"`) {
						t.Errorf("value %q not quoted", v)
					}
				}
				sets[key] = in.Values
				dnstest.WriteJSON(w, http.StatusCreated, map[string]string{"message": "DNS Record Created"})
			case http.MethodDelete:
				delete(sets, key)
				w.WriteHeader(http.StatusNoContent)
			}
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	}))
	defer srv.Close()
	newProvider := func(tok string) *gandi.Provider {
		p, err := gandi.New(gandi.Config{PersonalAccessToken: secret.String(tok), Endpoint: srv.URL + "/v5/livedns"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(pat)
	dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, v := range sets["example.com/_acme-challenge.www"] {
			out = append(out, rest.Unquote(v))
		}
		return out
	})
	zones, err := p.Zones(t.Context())
	if err != nil || !cmp.Equal(zones, domains) {
		t.Errorf("Zones = %d, %v", len(zones), err)
	}
	if ns, err := p.NameServers(t.Context(), "example.com"); err != nil || len(ns) != 2 {
		t.Errorf("NameServers = %v, %v", ns, err)
	}
	_, err = newProvider("wrong").Zones(t.Context())
	if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: Unauthorized: The server could not verify") {
		t.Errorf("wrong token: %v", err)
	}
}
