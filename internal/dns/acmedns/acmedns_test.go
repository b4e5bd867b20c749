package acmedns_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/acmedns"
	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const fulldomain = "d420c923-bbd7-4056-ab64-c3ca54c9b3cf.auth.acme-dns.test"

// fakeACMEDNS answers /update like acme-dns: it keeps the two most recent
// values of a subdomain.
func fakeACMEDNS(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var txt []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/update" || r.Method != http.MethodPost {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
		if r.Header.Get("X-Api-User") != "c36f50e8-4632-44f0-83fe-e070fef28a10" || r.Header.Get("X-Api-Key") != "htB9mR9DYgcu9bX_afHF62erXaH2TS7bg9KW3F7Z" {
			dnstest.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "forbidden"})
			return
		}
		var in struct {
			Subdomain string `json:"subdomain"`
			TXT       string `json:"txt"`
		}
		if !dnstest.ReadJSON(t, r, &in) || in.Subdomain != "d420c923-bbd7-4056-ab64-c3ca54c9b3cf" {
			dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_subdomain"})
			return
		}
		if len(in.TXT) != 43 {
			dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_txt"})
			return
		}
		mu.Lock()
		txt = append(txt, in.TXT)
		if len(txt) > 2 {
			txt = txt[len(txt)-2:]
		}
		mu.Unlock()
		dnstest.WriteJSON(w, http.StatusOK, map[string]string{"txt": in.TXT})
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string{}, txt...) }
}

func TestACMEDNS(t *testing.T) {
	t.Parallel()
	srv, read := fakeACMEDNS(t)
	accounts := `{"example.com":{"username":"c36f50e8-4632-44f0-83fe-e070fef28a10","password":"htB9mR9DYgcu9bX_afHF62erXaH2TS7bg9KW3F7Z","fulldomain":"` + fulldomain + `","subdomain":"d420c923-bbd7-4056-ab64-c3ca54c9b3cf","allowfrom":[]}}`
	p, err := acmedns.New(acmedns.Config{Endpoint: srv.URL, Accounts: secret.String(accounts)})
	if err != nil {
		t.Fatal(err)
	}
	a, b := strings.Repeat("a", 43), strings.Repeat("b", 43)
	if err := p.Present(t.Context(), "auth.acme-dns.test", fulldomain+".", []string{a, b}); err != nil {
		t.Fatal(err)
	}
	if got := read(); !cmp.Equal(got, []string{a, b}) {
		t.Errorf("values = %v", got)
	}
	if err := p.CleanUp(t.Context(), "auth.acme-dns.test", fulldomain+".", []string{a, b}); err != nil {
		t.Errorf("CleanUp: %v", err)
	}
	if err := p.Present(t.Context(), "auth.acme-dns.test", fulldomain+".", []string{"a", "b", "c"}); err == nil {
		t.Error("three values accepted")
	}
	if err := p.Present(t.Context(), "auth.acme-dns.test", "other.auth.acme-dns.test.", []string{a}); err == nil || !strings.Contains(err.Error(), "no acme-dns account has the fulldomain") {
		t.Errorf("unknown fulldomain: %v", err)
	}
	err = p.Present(t.Context(), "auth.acme-dns.test", fulldomain+".", []string{"short"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 400 Bad Request: bad_txt") {
		t.Errorf("refused value: %v", err)
	}
	if _, err := acmedns.New(acmedns.Config{Endpoint: srv.URL, Accounts: `{"x.com":{"username":"u"}}`}); err == nil {
		t.Error("an incomplete account was accepted")
	}
}
