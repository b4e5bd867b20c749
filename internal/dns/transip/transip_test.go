package transip_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/transip"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const login = "certkeeper-test"

type dnsEntry struct {
	Name    string `json:"name"`
	Expire  int    `json:"expire"`
	Type    string `json:"type"`
	Content string `json:"content"`
}

// fakeTransIP answers like TransIP's REST API v6.
type fakeTransIP struct {
	t      *testing.T
	pub    *rsa.PublicKey
	mu     sync.Mutex
	tokens map[string]bool
	auths  int
	nonces map[string]bool
	dns    map[string][]dnsEntry
}

func tipError(w http.ResponseWriter, status int, msg string) {
	dnstest.WriteJSON(w, status, map[string]string{"error": msg})
}

func (f *fakeTransIP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/v6/auth" {
		f.serveAuth(w, r)
		return
	}
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !f.tokens[auth] {
		tipError(w, http.StatusUnauthorized, "Your access token has been revoked.")
		return
	}
	dnstest.WantHeader(f.t, r, "Accept", "application/json")
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v6/domains"), "/")
	switch {
	case r.URL.Path == "/v6/domains" && r.Method == http.MethodGet:
		var ds []map[string]any
		for d := range f.dns {
			ds = append(ds, map[string]any{"name": d, "authCode": "x", "isTransferLocked": false})
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"domains": ds})
	case len(parts) != 3:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		tipError(w, http.StatusNotFound, "Endpoint not found")
	case f.dns[parts[1]] == nil:
		tipError(w, http.StatusNotFound, "Domain with name '"+parts[1]+"' not found")
	case parts[2] == "nameservers" && r.Method == http.MethodGet:
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"nameservers": []map[string]string{
			{"hostname": "ns0.transip.net", "ipv4": "", "ipv6": ""}, {"hostname": "ns1.transip.nl", "ipv4": "", "ipv6": ""}}})
	case parts[2] == "dns" && r.Method == http.MethodGet:
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"dnsEntries": f.dns[parts[1]]})
	case parts[2] == "dns" && (r.Method == http.MethodPost || r.Method == http.MethodDelete):
		dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
		var in struct {
			DNSEntry dnsEntry `json:"dnsEntry"`
		}
		if !dnstest.ReadJSON(f.t, r, &in) {
			tipError(w, http.StatusNotAcceptable, "Invalid request body")
			return
		}
		e := in.DNSEntry
		if e.Type != "TXT" || e.Name == "" || e.Content == "" || e.Expire < 60 {
			f.t.Errorf("%s dns entry %+v", r.Method, e)
		}
		entries := f.dns[parts[1]]
		i := -1
		for j, c := range entries {
			if c == e {
				i = j
			}
		}
		if r.Method == http.MethodPost {
			if i >= 0 {
				tipError(w, http.StatusConflict, "This DNS entry already exists")
				return
			}
			f.dns[parts[1]] = append(entries, e)
			w.WriteHeader(http.StatusCreated)
			return
		}
		if i < 0 {
			tipError(w, http.StatusNotFound, "DNS entry not found")
			return
		}
		f.dns[parts[1]] = append(entries[:i:i], entries[i+1:]...)
		w.WriteHeader(http.StatusNoContent)
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		tipError(w, http.StatusMethodNotAllowed, "Method not allowed")
	}
}

// serveAuth checks the Signature over the exact body, as TransIP does.
func (f *fakeTransIP) serveAuth(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost {
		f.t.Errorf("%s /v6/auth", r.Method)
	}
	dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
	sig, err := base64.StdEncoding.DecodeString(r.Header.Get("Signature"))
	sum := sha512.Sum512(body)
	if err != nil || rsa.VerifyPKCS1v15(f.pub, crypto.SHA512, sum[:], sig) != nil {
		tipError(w, http.StatusUnauthorized, "Invalid signature")
		return
	}
	var in struct {
		Login          string `json:"login"`
		Nonce          string `json:"nonce"`
		ReadOnly       bool   `json:"read_only"`
		ExpirationTime string `json:"expiration_time"`
		Label          string `json:"label"`
		GlobalKey      bool   `json:"global_key"`
	}
	if err := dnstest.DecodeStrict(body, &in); err != nil {
		f.t.Errorf("auth body %s: %v", body, err)
	}
	switch {
	case in.Login != login:
		tipError(w, http.StatusUnauthorized, "Login not found or invalid")
		return
	case len(in.Nonce) < 8 || len(in.Nonce) > 32 || f.nonces[in.Nonce]:
		tipError(w, http.StatusBadRequest, "Nonce invalid or already used")
		return
	case in.ExpirationTime != "30 minutes" || in.ReadOnly || in.Label == "":
		f.t.Errorf("auth body %s", body)
	}
	f.nonces[in.Nonce] = true
	f.auths++
	tok := "token-" + in.Nonce
	f.tokens[tok] = true
	dnstest.WriteJSON(w, http.StatusCreated, map[string]string{"token": tok})
}

func (f *fakeTransIP) txt(domain, name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.dns[domain] {
		if e.Type == "TXT" && e.Name == name {
			out = append(out, e.Content)
		}
	}
	return out
}

func newKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestTransIP(t *testing.T) {
	t.Parallel()
	key, keyPEM := newKey(t)
	_, otherPEM := newKey(t)
	f := &fakeTransIP{t: t, pub: &key.PublicKey, tokens: map[string]bool{}, nonces: map[string]bool{},
		dns: map[string][]dnsEntry{
			"example.com": {{Name: "@", Expire: 300, Type: "A", Content: "192.0.2.1"}, {Name: "_acme-challenge.www", Expire: 300, Type: "CNAME", Content: "x.example.net."}},
			"example.nl":  {},
		}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var (
		clockMu sync.Mutex
		clock   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	)
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	newProvider := func(login, keyPEM string) *transip.Provider {
		p, err := transip.New(transip.Config{Login: login, PrivateKey: secret.String(keyPEM), Endpoint: srv.URL, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(login, keyPEM)
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string { return f.txt("example.com", "_acme-challenge.www") })
		if got := len(f.dns["example.com"]); got != 2 {
			t.Errorf("other entries touched: %v", f.dns["example.com"])
		}
	})
	t.Run("apex", func(t *testing.T) {
		if err := p.Present(t.Context(), "example.nl", "example.nl.", []string{"v"}); err != nil {
			t.Fatal(err)
		}
		if got := f.txt("example.nl", "@"); !cmp.Equal(got, []string{"v"}) {
			t.Errorf("apex TXT = %v", got)
		}
	})
	t.Run("domains, name servers and token reuse", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil || len(zones) != 2 {
			t.Errorf("Zones = %v, %v", zones, err)
		}
		ns, err := p.NameServers(t.Context(), "example.com")
		if err != nil || !cmp.Equal(ns, []string{"ns0.transip.net", "ns1.transip.nl"}) {
			t.Errorf("NameServers = %v, %v", ns, err)
		}
		f.mu.Lock()
		auths := f.auths
		f.mu.Unlock()
		if auths != 1 {
			t.Errorf("%d tokens asked, want 1", auths)
		}
		clockMu.Lock()
		clock = clock.Add(26 * time.Minute)
		clockMu.Unlock()
		if _, err := p.Zones(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		auths = f.auths
		f.mu.Unlock()
		if auths != 2 {
			t.Errorf("%d tokens asked after expiry, want 2", auths)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := newProvider(login, otherPEM).Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: Invalid signature") || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("wrong key: %v", err)
		}
		_, err = newProvider("nobody", keyPEM).Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "Login not found or invalid") {
			t.Errorf("wrong login: %v", err)
		}
		err = p.Present(t.Context(), "unknown.example", "_acme-challenge.unknown.example.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 404 Not Found: Domain with name 'unknown.example' not found") {
			t.Errorf("unknown domain: %v", err)
		}
		if _, err := transip.New(transip.Config{Login: login, PrivateKey: "not a key"}); err == nil || strings.Contains(err.Error(), "not a key") {
			t.Errorf("bad key: %v", err)
		}
	})
}
