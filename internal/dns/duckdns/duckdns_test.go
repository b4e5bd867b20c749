package duckdns_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/certkeeper/certkeeper/internal/dns/duckdns"
)

func TestDuckDNS(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	txt := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/update" || r.Method != http.MethodGet || q.Get("token") != "duck-token-0123" || q.Get("domains") != "myhost" {
			io.WriteString(w, "KO")
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if q.Get("clear") == "true" {
			delete(txt, q.Get("domains"))
		} else {
			txt[q.Get("domains")] = q.Get("txt")
		}
		io.WriteString(w, "OK")
	}))
	defer srv.Close()
	p, err := duckdns.New(duckdns.Config{Token: "duck-token-0123", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := p.Present(ctx, "myhost.duckdns.org", "_acme-challenge.myhost.duckdns.org.", []string{"v1"}); err != nil || txt["myhost"] != "v1" {
		t.Fatalf("Present: %v, %v", err, txt)
	}
	if err := p.CleanUp(ctx, "myhost.duckdns.org", "_acme-challenge.myhost.duckdns.org.", []string{"v1"}); err != nil || len(txt) != 0 {
		t.Fatalf("CleanUp: %v, %v", err, txt)
	}
	if err := p.Present(ctx, "myhost.duckdns.org", "_acme-challenge.myhost.duckdns.org.", []string{"a", "b"}); err == nil || !strings.Contains(err.Error(), "one TXT value") {
		t.Errorf("two values: %v", err)
	}
	bad, _ := duckdns.New(duckdns.Config{Token: "wrong-token", Endpoint: srv.URL})
	err = bad.Present(ctx, "myhost.duckdns.org", "_acme-challenge.myhost.duckdns.org.", []string{"v"})
	if err == nil || !strings.Contains(err.Error(), `Duck DNS answered "KO"`) || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("wrong token: %v", err)
	}
}
