package app_test

import (
	"context"
	"errors"
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

// TestIssueInProcess runs the assembled service in this process against a
// real Pebble and BIND, on both databases: issue, poll to 200, list.
func TestIssueInProcess(t *testing.T) {
	t.Parallel()
	bind := testenv.StartBIND(t, testenv.BINDOptions{})
	pebble := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr})
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Listen = "127.0.0.1:0"
			cfg.DataDir = t.TempDir()
			if db == "postgres" {
				cfg.Database = secret.String(testenv.PostgresURL(t))
			}
			cfg.ACME.Endpoint = pebble.DirectoryURL
			cfg.ACME.CABundle = pebble.CABundle
			cfg.ACME.Profile = "default"
			cfg.DNS.Resolvers = []string{bind.Addr}
			cfg.DNS.Providers = []config.DNSProvider{{Name: "BIND", Type: config.ProviderRFC2136, Zones: []string{"example.test"}, TTL: 60,
				RFC2136: &config.RFC2136{Nameserver: bind.Addr, TSIGKeyName: bind.TSIGKeyName, TSIGAlgorithm: bind.TSIGAlgorithm,
					TSIGSecret: secret.String(bind.TSIGSecret)}}}
			cfg.Auth.APIKeys = []config.APIKey{{Name: "t", Key: testKey}}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("config: %v", err)
			}
			key, _, err := secret.NewKey()
			if err != nil {
				t.Fatal(err)
			}
			bundle, err := os.ReadFile(pebble.CABundle)
			if err != nil {
				t.Fatal(err)
			}
			logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			a, err := app.New(t.Context(), app.Options{Config: &cfg, MasterKey: key, CABundle: bundle, Version: "test", Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("Run: %v", err)
				}
			})
			base := "http://" + a.Addr().String()

			start := time.Now()
			resp := do(t, http.MethodPost, base+"/api/certificate", `{"dnsNames":["example.test","*.example.test"]}`)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST status = %d", resp.StatusCode)
			}
			loc := resp.Header.Get("Location")
			for {
				r := do(t, http.MethodGet, loc, "")
				if r.StatusCode == http.StatusOK {
					break
				}
				if r.StatusCode != http.StatusAccepted {
					body, _ := io.ReadAll(r.Body)
					t.Fatalf("state = %d: %s", r.StatusCode, body)
				}
				select {
				case <-t.Context().Done():
					t.Fatal("no result before the test deadline")
				case <-time.After(50 * time.Millisecond):
				}
			}
			t.Logf("issued in %v", time.Since(start))
			r := do(t, http.MethodGet, base+"/api/certificates", "")
			body, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(body), `"name":"example-test"`) {
				t.Errorf("certificates = %s", body)
			}
			left, err := bind.ChallengeRecords(t.Context(), "example.test")
			if err != nil || len(left) != 0 {
				t.Errorf("challenge records left: %v, %v", left, err)
			}
		})
	}
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
