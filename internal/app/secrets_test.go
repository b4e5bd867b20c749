package app_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// lockedBuffer collects log output from concurrent goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoSecretsLeak runs issue, renew, revoke, failures, webhooks, a
// metrics scrape and error responses, and scans every log line, operation
// detail, webhook payload, metric and response for private keys, the API
// key, the TSIG secret, an EAB MAC key, the master key and a DNS provider
// credential; then reads the SQLite files directly for the private keys.
func TestNoSecretsLeak(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	hooks := newHookReceiver(t, 0)
	cfg := d.config(t, "sqlite")
	const eabKey = "c2VjcmV0LWVhYi1obWFjLWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ"
	const cloudflareToken = "cf-token-SECRET-0123456789abcdefABCDEF"
	cfg.CAs = []config.CA{{Name: "eab", Endpoint: "https://127.0.0.1:1/dir",
		ExternalAccountBinding: &config.EAB{KeyID: "kid-1", HMACKey: secret.String(eabKey)}}}
	cfg.DefaultCAs = []string{"default"}
	cfg.DNS.Providers = append(cfg.DNS.Providers, config.DNSProvider{Name: "Cloud", Type: config.ProviderCloudflare,
		Zones: []string{"cloud.test"}, TTL: 60, PropagationTimeout: cfg.DNS.PropagationTimeout,
		Settings: &config.Cloudflare{APIToken: secret.String(cloudflareToken), Endpoint: "http://127.0.0.1:1/client/v4"}})
	cfg.Webhook = config.Webhooks{{URL: secret.String(hooks.URL + "/hook"), PayloadType: config.PayloadGeneric}}
	key, encodedKey, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	bundle, err := os.ReadFile(cfg.ACME.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(t.Context(), app.Options{Config: &cfg, MasterKey: key, CABundle: bundle, Version: "test", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	base := run(t, a)

	var seen []string // every response body and header
	record := func(r *http.Response) string {
		b, _ := io.ReadAll(r.Body)
		h, _ := json.Marshal(r.Header)
		seen = append(seen, string(b), string(h))
		return string(b)
	}
	waitRecorded := func(want int, accepted *http.Response) {
		t.Helper()
		record(accepted)
		status, body := waitFor(t, accepted)
		seen = append(seen, body)
		if status != want {
			t.Fatalf("operation ended %d, want %d: %s", status, want, body)
		}
	}

	waitRecorded(200, post(t, base+"/api/certificate", `{"dnsNames":["leak.example.test"],"keyType":"EC"}`))
	waitRecorded(200, post(t, base+"/api/certificate", `{"dnsNames":["leak-rsa.example.test"],"keyType":"RSA","keySize":2048}`))
	waitRecorded(200, post(t, base+"/api/certificate/leak-example-test/renew", ""))
	if r := do(t, http.MethodPost, base+"/api/certificate/leak-rsa-example-test/revoke", `{"reason":4}`); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke = %d: %s", r.StatusCode, record(r))
	} else {
		record(r)
	}
	waitRecorded(500, post(t, base+"/api/certificate", `{"dnsNames":["leak.blocked.test"]}`))
	waitRecorded(500, post(t, base+"/api/certificate", `{"dnsNames":["leak.cloud.test"]}`))
	waitRecorded(500, post(t, base+"/api/certificate", `{"dnsNames":["leak-eab.example.test"],"ca":"eab"}`))
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/certificate", "{"},
		{"POST", "/api/certificate", `{"dnsNames":["x.nowhere.test"]}`},
		{"GET", "/api/certificates", ""},
		{"GET", "/api/dns-zones", ""},
		{"GET", "/api/operations", ""},
		{"GET", "/api/renewals", ""},
		{"GET", "/api/account", ""},
		{"GET", "/api/me", ""},
		{"GET", "/api/certificates/leak-example-test/versions", ""},
	} {
		record(do(t, r.method, base+r.path, r.body))
	}
	// Operation details, with their steps.
	var ops []struct {
		ID string `json:"id"`
	}
	resp := do(t, http.MethodGet, base+"/api/operations?limit=100", "")
	if err := json.Unmarshal([]byte(record(resp)), &ops); err != nil {
		var page struct {
			Operations []struct {
				ID string `json:"id"`
			} `json:"operations"`
		}
		_ = json.Unmarshal([]byte(seen[len(seen)-2]), &page)
		for _, o := range page.Operations {
			ops = append(ops, struct {
				ID string `json:"id"`
			}{o.ID})
		}
	}
	if len(ops) < 6 { // revocation is not an operation
		t.Errorf("listed %d operations; want the 6 started", len(ops))
	}
	for _, o := range ops {
		record(do(t, http.MethodGet, base+"/api/operations/"+o.ID, ""))
	}
	// Wrong keys.
	for _, k := range []string{"", "wrong", testKey + "x"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/certificates", nil)
		req.Header.Set("X-Functions-Key", k)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		record(r)
		r.Body.Close()
	}
	waitUntil(t, "the webhooks", func() bool { return len(hooks.events("completed")) >= 2 && len(hooks.events("failed")) >= 1 })
	metricsResp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText := record(metricsResp)
	metricsResp.Body.Close()
	if !strings.Contains(metricsText, "certkeeper_") {
		t.Fatalf("/metrics holds no certkeeper series: %.200s", metricsText)
	}
	hooks.mu.Lock()
	payloads, _ := json.Marshal(hooks.accepted)
	hooks.mu.Unlock()

	// The secrets: configured ones, and the private keys as stored.
	st, err := store.OpenShared(t.Context(), filepath.Join(cfg.DataDir, "certkeeper.db"), slog.New(slog.DiscardHandler))
	if cfg.Database != "" {
		st, err = store.Open(t.Context(), cfg.Database.Reveal(), slog.New(slog.DiscardHandler))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	needles := map[string]string{
		"API key": testKey, "TSIG secret": d.bind.TSIGSecret, "EAB MAC key": eabKey,
		"Cloudflare token": cloudflareToken, "master key": encodedKey, "PEM private key": "PRIVATE KEY",
	}
	v := vault.NewBuiltin(st, key)
	keyFragments := 0
	for _, name := range []string{"leak-example-test", "leak-rsa-example-test"} {
		ver, err := v.Latest(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(ver.KeyPEM)
		if blk == nil {
			t.Fatalf("%s: stored key is not PEM", name)
		}
		b64 := base64.StdEncoding.EncodeToString(blk.Bytes)
		// The private scalar sits past the DER header: look for pieces of
		// the body, in base64 (both alphabets) and raw.
		for i, off := range []int{len(b64) / 3, len(b64) / 2} {
			frag := b64[off : off+24]
			needles[name+" key base64 "+string(rune('a'+i))] = frag
			needles[name+" key base64url "+string(rune('a'+i))] = strings.NewReplacer("+", "-", "/", "_").Replace(frag)
			keyFragments++
		}
		needles[name+" key DER"] = string(blk.Bytes[len(blk.Bytes)/2 : len(blk.Bytes)/2+16])
	}

	sources := map[string]string{
		"logs": logs.String(), "responses": strings.Join(seen, "\n"), "webhook payloads": string(payloads), "metrics": metricsText,
	}
	// Raw database files: the private keys are sealed there.
	dbFiles := ""
	for _, f := range []string{"certkeeper.db", "certkeeper.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(cfg.DataDir, f))
		dbFiles += string(b)
	}
	if len(dbFiles) == 0 {
		t.Fatal("no SQLite file in the data directory")
	}
	hits := 0
	for src, text := range sources {
		for what, needle := range needles {
			if needle != "" && strings.Contains(text, needle) {
				t.Errorf("%s holds the %s", src, what)
				hits++
			}
		}
	}
	for what, needle := range needles {
		if strings.Contains(what, " key ") && strings.Contains(dbFiles, needle) {
			t.Errorf("the SQLite file holds the %s in the clear", what)
			hits++
		}
	}
	if strings.Contains(dbFiles, "PRIVATE KEY") {
		t.Error("the SQLite file holds a PEM private key in the clear")
		hits++
	}
	lines := strings.Count(sources["logs"], "\n")
	t.Logf("secrets scan: %d log lines, %d responses, %d webhook payloads, %d bytes of metrics, %d bytes of database, %d needles (%d key fragments): %d hits",
		lines, len(seen), len(hooks.accepted), len(metricsText), len(dbFiles), len(needles), keyFragments, hits)
	if lines < 50 {
		t.Errorf("only %d log lines captured; the scan would prove little", lines)
	}
}
