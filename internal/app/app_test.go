package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopPostgres()
	os.Exit(code)
}

const testKey = "app-test-key-0123456789"

// deps are the real servers the service runs against.
type deps struct {
	bind   *testenv.BIND
	pebble *testenv.Pebble
}

func startDeps(t *testing.T) deps {
	t.Helper()
	// Pebble's domainBlocklist panics on names with fewer labels than a
	// blocked entry, so the blocked names get a two-label zone of their own.
	bind := testenv.StartBIND(t, testenv.BINDOptions{Zones: []string{"example.test", "blocked.test"}})
	pebble := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, BlockedDomains: []string{"blocked.test"}})
	return deps{bind: bind, pebble: pebble}
}

// config returns a valid configuration for the service against d on db
// ("sqlite" or "postgres").
func (d deps) config(t *testing.T, db string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	if db == "postgres" {
		cfg.Database = secret.String(testenv.PostgresURL(t))
	}
	cfg.ACME.Endpoint = d.pebble.DirectoryURL
	cfg.ACME.CABundle = d.pebble.CABundle
	cfg.ACME.Profile = "default"
	cfg.DNS.Resolvers = []string{d.bind.Addr}
	cfg.DNS.PropagationTimeout = 30 * time.Second
	cfg.DNS.Providers = []config.DNSProvider{{Name: "BIND", Type: config.ProviderRFC2136, Zones: []string{"example.test", "blocked.test"}, TTL: 60,
		PropagationTimeout: 30 * time.Second,
		RFC2136: &config.RFC2136{Nameserver: d.bind.Addr, TSIGKeyName: d.bind.TSIGKeyName, TSIGAlgorithm: d.bind.TSIGAlgorithm,
			TSIGSecret: secret.String(d.bind.TSIGSecret)}}}
	cfg.Auth.APIKeys = []config.APIKey{{Name: "t", Key: testKey}}
	return cfg
}

// service runs the assembled service in this process until the test ends
// and returns its base URL. It uses cfg.MasterKey when set (replicas of one
// database share it), else a new key.
func service(t *testing.T, cfg config.Config) string {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	key, _, err := secret.NewKey()
	if cfg.MasterKey != "" {
		key, err = secret.ParseKey(cfg.MasterKey.Reveal())
	}
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(cfg.ACME.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(t.Context(), app.Options{Config: &cfg, MasterKey: key, CABundle: bundle, Version: "test", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "http://" + a.Addr().String()
}

func eachDatabase(t *testing.T, fn func(t *testing.T, db string)) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			fn(t, db)
		})
	}
}

// TestIssueRenew issues, renews with a reused key, and checks what the
// list shows and that no challenge record is left.
func TestIssueRenew(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		base := service(t, d.config(t, db))
		start := time.Now()
		// Each database's subtest has its own names: they share BIND.
		zone := db + ".example.test"
		name := db + "-example-test"
		status, body := issueAndWait(t, base, `{"dnsNames":["`+zone+`","*.`+zone+`"],"reuseKey":true,"keyType":"EC"}`)
		if status != http.StatusOK {
			t.Fatalf("issuance ended with %d: %s", status, body)
		}
		t.Logf("issued (POST to 200) in %v", time.Since(start))
		first := certificateItem(t, base, name)

		status, body = waitFor(t, post(t, base+"/api/certificate/"+name+"/renew", ""))
		if status != http.StatusOK {
			t.Fatalf("renewal ended with %d: %s", status, body)
		}
		second := certificateItem(t, base, name)
		if second["id"] == first["id"] || second["x509Thumbprint"] == first["x509Thumbprint"] {
			t.Errorf("renewal did not make a new version: before %v, after %v", first, second)
		}
		if second["keyType"] != "EC" || second["reuseKey"] != true {
			t.Errorf("renewal changed the settings: %v", second)
		}
		assertNoRecords(t, d.bind, zone)
	})
}

// assertNoRecords fails when a challenge record for a name under suffix is
// left in BIND.
func assertNoRecords(t *testing.T, bind *testenv.BIND, suffix string) {
	t.Helper()
	left, err := bind.ChallengeRecords(t.Context(), "example.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range left {
		if strings.HasSuffix(strings.TrimSuffix(owner, "."), suffix) {
			t.Errorf("challenge record left: %s", owner)
		}
	}
}

// TestFailuresNameTheStep checks that failures end the operation with the
// step and the other side's own words, and leave nothing behind.
func TestFailuresNameTheStep(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		t.Run("CA refuses the name", func(t *testing.T) {
			base := service(t, d.config(t, db))
			status, body := issueAndWait(t, base, `{"dnsNames":["www.blocked.test"]}`)
			if status != http.StatusInternalServerError || !strings.Contains(body, "ordering") ||
				!strings.Contains(body, "rejectedIdentifier") {
				t.Errorf("state = %d %s; want 500 naming the ordering step and Pebble's rejectedIdentifier", status, body)
			}
		})
		t.Run("DNS server refuses the update", func(t *testing.T) {
			cfg := d.config(t, db)
			cfg.DNS.Providers[0].RFC2136.TSIGSecret = secret.String("d3JvbmctdHNpZy1zZWNyZXQtZm9yLXRlc3Rpbmc=")
			base := service(t, cfg)
			status, body := issueAndWait(t, base, `{"dnsNames":["refused.`+db+`.example.test"]}`)
			if status != http.StatusInternalServerError || !strings.Contains(body, "presenting DNS records") ||
				!strings.Contains(body, d.bind.Addr) {
				t.Errorf("state = %d %s; want 500 naming the presenting step and the DNS server", status, body)
			}
		})
		t.Run("CA unreachable", func(t *testing.T) {
			cfg := d.config(t, db)
			cfg.ACME.Endpoint = "https://127.0.0.1:1/dir"
			cfg.ACME.Profile = ""
			base := service(t, cfg)
			status, body := issueAndWait(t, base, `{"dnsNames":["unreachable.`+db+`.example.test"]}`)
			if status != http.StatusInternalServerError || !strings.Contains(body, "127.0.0.1:1") {
				t.Errorf("state = %d %s; want 500 naming the CA address", status, body)
			}
		})
		assertNoRecords(t, d.bind, db+".example.test")
	})
}

func issueAndWait(t *testing.T, base, body string) (int, string) {
	t.Helper()
	return waitFor(t, post(t, base+"/api/certificate", body))
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp := do(t, http.MethodPost, url, body)
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s = %d: %s", url, resp.StatusCode, b)
	}
	return resp
}

// waitFor polls the Location of an accepted request until it is not 202.
func waitFor(t *testing.T, accepted *http.Response) (int, string) {
	t.Helper()
	loc := accepted.Header.Get("Location")
	for {
		r := do(t, http.MethodGet, loc, "")
		if r.StatusCode != http.StatusAccepted {
			b, _ := io.ReadAll(r.Body)
			return r.StatusCode, string(b)
		}
		select {
		case <-t.Context().Done():
			t.Fatal("operation did not end before the test deadline")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func certificateItem(t *testing.T, base, name string) map[string]any {
	t.Helper()
	r := do(t, http.MethodGet, base+"/api/certificates", "")
	var items []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&items); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it["name"] == name {
			return it
		}
	}
	t.Fatalf("certificate %s not listed in %v", name, items)
	return nil
}

func do(t *testing.T, method, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Functions-Key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
