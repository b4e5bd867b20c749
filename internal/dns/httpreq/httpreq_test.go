package httpreq_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/httpreq"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// TestHTTPReq runs the RRset scenario against an endpoint that keeps what
// it is told, checking lego's httpreq contract and basic authentication.
func TestHTTPReq(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	values := map[string][]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "certkeeper" || pass != "s3cret-password" {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		dnstest.WantHeader(t, r, "Content-Type", "application/json")
		var m struct {
			FQDN  string `json:"fqdn"`
			Value string `json:"value"`
		}
		if r.Method != http.MethodPost || !dnstest.ReadJSON(t, r, &m) || !strings.HasSuffix(m.FQDN, ".") {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/dns/present":
			if m.Value == "refuse-me" {
				http.Error(w, "zone is locked", http.StatusConflict)
				return
			}
			if !slices.Contains(values[m.FQDN], m.Value) {
				values[m.FQDN] = append(values[m.FQDN], m.Value)
			}
		case "/dns/cleanup":
			values[m.FQDN] = slices.DeleteFunc(values[m.FQDN], func(v string) bool { return v == m.Value })
		default:
			t.Errorf("unexpected path %s", r.URL.Path)
		}
	}))
	defer srv.Close()
	p, err := httpreq.New(httpreq.Config{Endpoint: srv.URL + "/dns/", Username: "certkeeper", Password: "s3cret-password"})
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(values["_acme-challenge.www.example.com."])
	})
	err = p.Present(t.Context(), "example.com", "_acme-challenge.example.com.", []string{"refuse-me"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 409 Conflict: zone is locked") {
		t.Errorf("refused: %v", err)
	}
	bad, _ := httpreq.New(httpreq.Config{Endpoint: srv.URL + "/dns", Username: "certkeeper", Password: secret.String("wrong")})
	if err := bad.Present(t.Context(), "example.com", "_acme-challenge.example.com.", []string{"v"}); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v", err)
	}
}
