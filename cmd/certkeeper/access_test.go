package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestAPIKeyCommands bootstraps an admin key offline, runs a server on the
// same database, manages a key through it, revokes keys online and offline
// (each refused by the running server at the next request), and reads the
// audit trail — on SQLite and on PostgreSQL.
func TestAPIKeyCommands(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dir := t.TempDir()
			yaml := "listen: 127.0.0.1:0\ndataDir: " + dir + "\nauth:\n  requireRoles: true\n"
			if db == "postgres" {
				yaml += "database: " + testenv.PostgresURL(t) + "\n"
			}
			cfgPath := filepath.Join(dir, "certkeeper.yaml")
			if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cli := func(wantCode int, args ...string) string {
				t.Helper()
				out, errOut, code := runCLI(t, "", args...)
				if code != wantCode {
					t.Fatalf("certkeeper %s: exit %d, want %d: %s%s", strings.Join(args, " "), code, wantCode, out, errOut)
				}
				return out + errOut
			}
			var boot struct{ ID, Name, Key string }
			out := cli(0, "apikey", "create", "--offline", "--config", cfgPath, "--name", "boot", "--role", "Certkeeper.Admin", "--expires", "30d", "--json")
			if err := json.Unmarshal([]byte(out), &boot); err != nil || !strings.HasPrefix(boot.Key, "ck_") {
				t.Fatalf("offline create printed %s (%v)", out, err)
			}
			cli(1, "apikey", "create", "--offline", "--config", cfgPath, "--name", "boot")
			cli(2, "apikey", "create", "--offline", "--config", cfgPath, "--name", "x", "--role", "Admin")

			server := startServer(t, cfgPath)
			admin := []string{"--server", server, "--api-key", boot.Key}
			var team struct{ ID, Key string }
			out = cli(0, append([]string{"apikey", "create", "--name", "team", "--role", "Acmebot.IssueCertificate,Acmebot.RevokeCertificate",
				"--zone", "example.com", "--json"}, admin...)...)
			if err := json.Unmarshal([]byte(out), &team); err != nil {
				t.Fatalf("online create printed %s (%v)", out, err)
			}
			out = cli(0, append([]string{"apikey", "list"}, admin...)...)
			for _, want := range []string{"boot", "team", "example.com", "Acmebot.IssueCertificate", "managed"} {
				if !strings.Contains(out, want) {
					t.Errorf("apikey list lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, team.Key) || strings.Contains(out, boot.Key) {
				t.Errorf("apikey list shows a key:\n%s", out)
			}
			cli(0, "list", "--server", server, "--api-key", team.Key)
			cli(1, append([]string{"apikey", "list"}, "--server", server, "--api-key", team.Key)...)

			cli(0, append([]string{"apikey", "revoke", "team"}, admin...)...)
			if out := cli(1, "list", "--server", server, "--api-key", team.Key); !strings.Contains(out, "401") {
				t.Errorf("a revoked key: %s", out)
			}
			cli(0, "apikey", "revoke", "--offline", "--config", cfgPath, boot.ID)
			if out := cli(1, append([]string{"list"}, admin...)...); !strings.Contains(out, "401") {
				t.Errorf("a key revoked offline: %s", out)
			}

			var entries []struct {
				Action string
				Actor  struct{ Kind, Name string }
				Detail string
			}
			out = cli(0, "audit", "--offline", "--config", cfgPath, "--json")
			if err := json.Unmarshal([]byte(out), &entries); err != nil {
				t.Fatalf("audit printed %s (%v)", out, err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Action+" by "+e.Actor.Kind)
			}
			slices.Reverse(got)
			want := []string{"apikey.create by local", "apikey.create by key", "apikey.revoke by key", "apikey.revoke by local"}
			if !slices.Equal(got, want) {
				t.Errorf("audit = %v; want %v", got, want)
			}
			if out := cli(0, "audit", "--offline", "--config", cfgPath, "--action", "apikey.revoke"); !strings.Contains(out, "apikey.revoke") ||
				strings.Contains(out, "apikey.create") {
				t.Errorf("audit --action:\n%s", out)
			}
		})
	}
}

// startServer runs the service of the configuration file in this process
// until the test ends and returns its URL.
func startServer(t *testing.T, cfgPath string) string {
	t.Helper()
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runService(ctx, cfg, slog.New(slog.DiscardHandler), func(addr string) { ready <- addr })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("service ended: %v", err)
	case <-t.Context().Done():
		t.Fatal("service did not start")
	}
	return ""
}

func TestParseExpiry(t *testing.T) {
	now := mustTime(t, "2030-01-01T00:00:00Z")
	for in, want := range map[string]string{
		"90d":                  "2030-04-01T00:00:00Z",
		"36h":                  "2030-01-02T12:00:00Z",
		"2030-02-01":           "2030-02-01T00:00:00Z",
		"2030-02-01T10:00:00Z": "2030-02-01T10:00:00Z",
	} {
		got, err := parseExpiry(in, now)
		if err != nil || !got.Equal(mustTime(t, want)) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-1h", "2029-01-01", "soon", "d"} {
		if _, err := parseExpiry(in, now); err == nil {
			t.Errorf("parseExpiry(%q) accepted", in)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
