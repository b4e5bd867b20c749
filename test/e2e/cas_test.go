package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestSeveralCAsThroughTheBinary runs certkeeper serve with a YAML file
// that names two CAs — the first a stopped Pebble, the second a Pebble
// requiring an External Account Binding whose MAC key is read from a file —
// and drives it with the CLI: a dry run, an issuance that fails over, the
// account and its key rollover.
func TestSeveralCAsThroughTheBinary(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, db string) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		bind := testenv.StartBIND(t, testenv.BINDOptions{Zones: []string{zone, "test"}})
		first := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr})
		first.Stop()
		mac := base64.RawURLEncoding.EncodeToString([]byte("e2e-eab-mac-key-0123456789abcdef"))
		second := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, NonceRejectPercent: 20,
			ExternalAccountBindingRequired: true, ExternalAccountMACKeys: map[string]string{"kid-e2e": mac},
			CAAIdentities: []string{"ca.e2e.test"}})
		dataDir := t.TempDir()
		macFile := filepath.Join(dataDir, "eab.key")
		if err := os.WriteFile(macFile, []byte(mac+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		database := ""
		if db == "postgres" {
			database = testenv.PostgresURL(t)
		}
		adminKey := "ak-" + randomHex(16)
		cfg := map[string]any{
			"dataDir":  dataDir,
			"database": database,
			"acme":     map[string]any{"endpoint": ""},
			"cas": []map[string]any{
				{"name": "first", "endpoint": first.DirectoryURL, "caBundle": first.CABundle, "profile": "default"},
				{"name": "second", "endpoint": second.DirectoryURL, "caBundle": second.CABundle, "profile": "default",
					"contacts":               []string{"admin@example.test"},
					"externalAccountBinding": map[string]any{"keyId": "kid-e2e", "hmacKeyFile": macFile, "algorithm": "HS256"}},
			},
			"defaultCAs": []string{"first", "second"},
			"dns": map[string]any{
				"resolvers":          []string{bind.Addr},
				"propagationTimeout": "8s",
				"providers": []map[string]any{{
					"name": "BIND", "type": "rfc2136", "zones": []string{zone},
					"nameserver": bind.Addr, "tsigKeyName": bind.TSIGKeyName, "tsigAlgorithm": bind.TSIGAlgorithm, "tsigSecret": bind.TSIGSecret,
				}},
			},
			"auth": map[string]any{"apiKeys": []map[string]any{{"name": "admin", "key": adminKey, "roles": []string{"Certkeeper.Admin"}}}},
			"log":  map[string]any{"level": "debug", "format": "text"},
		}
		srv := startServer(t, cfg, dataDir)
		cli := func(args ...string) (string, error) {
			t.Helper()
			c := exec.CommandContext(ctx, certkeeperBin, args...)
			c.Env = append(certkeeperEnv(), "CERTKEEPER_URL="+srv.baseURL, "CERTKEEPER_API_KEY="+adminKey)
			out, err := c.Output()
			if ee, ok := err.(*exec.ExitError); ok {
				t.Logf("certkeeper %s: %s", strings.Join(args, " "), ee.Stderr)
			}
			return string(out), err
		}

		name := "multi-" + db + "." + zone
		out, err := cli("issue", "--dry-run", "--json", name)
		var rep struct {
			OK     bool
			Checks []struct{ Check, Subject, CA, Status string }
		}
		if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK {
			t.Fatalf("issue --dry-run: %v\n%s", err, out)
		}
		statuses := map[string]string{}
		for _, c := range rep.Checks {
			statuses[c.Check+"/"+c.CA] = c.Status
		}
		for k, want := range map[string]string{"ca/first": "failed", "ca/second": "passed", "caa/second": "passed",
			"dnsProvider/": "passed", "caSelection/": "passed"} {
			if statuses[k] != want {
				t.Errorf("dry run %s = %q, want %s (%+v)", k, statuses[k], want, rep.Checks)
			}
		}

		out, err = cli("issue", "--wait", "--json", name)
		var op struct {
			Status, VersionID string
			Steps             []struct{ Name, CA, Error string }
		}
		if err != nil || json.Unmarshal([]byte(out), &op) != nil || op.Status != "succeeded" {
			t.Fatalf("issue --wait: %v\n%s", err, out)
		}
		failedOver := false
		for _, s := range op.Steps {
			if s.Name == "trying the next CA" && s.CA == "first" && strings.Contains(s.Error, "unreachable") {
				failedOver = true
			}
		}
		if !failedOver {
			t.Errorf("no failover from CA first in the steps: %+v", op.Steps)
		}

		out, err = cli("account", "show", "--ca", "second", "--json")
		var acct struct{ CA, AccountURI string }
		if err != nil || json.Unmarshal([]byte(out), &acct) != nil || acct.AccountURI == "" {
			t.Fatalf("account show: %v\n%s", err, out)
		}
		out, err = cli("account", "rollover", "--ca", "second")
		if err != nil || !strings.Contains(out, "the key of the account at CA second was replaced") || !strings.Contains(out, acct.AccountURI) {
			t.Fatalf("account rollover: %v\n%s", err, out)
		}
		// The rolled-over key survives a restart: the stored account works.
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}
		srv.restart()
		if out, err := cli("renew", "--wait", "multi-"+db+"-example-test"); err != nil {
			t.Fatalf("renew after rollover and restart: %v\n%s", err, out)
		}
		if out, err := cli("revoke", "--reason", "superseded", "multi-"+db+"-example-test"); err != nil {
			t.Fatalf("revoke: %v\n%s", err, out)
		}
	})
}
