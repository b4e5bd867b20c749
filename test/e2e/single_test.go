package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// offlineConfig is a configuration that needs no CA or DNS server to start:
// the account preparation fails (logged), and nothing is issued.
func offlineConfig(t *testing.T, dataDir, database string) map[string]any {
	t.Helper()
	_, masterKey, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"dataDir":   dataDir,
		"database":  database,
		"masterKey": masterKey,
		"acme":      map[string]any{"endpoint": "https://127.0.0.1:1/directory"},
		"log":       map[string]any{"level": "info", "format": "text"},
	}
}

// runCommand runs the binary to completion and returns its exit code and
// combined output.
func runCommand(ctx context.Context, t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, certkeeperBin, args...)
	cmd.Env = certkeeperEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("running certkeeper %v: %v", args, err)
	}
	return 0, out.String()
}

func writeConfig(t *testing.T, path string, cfg map[string]any) {
	t.Helper()
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteRefusesSecondProcess starts certkeeper on a SQLite file, then a
// second process (serve and migrate) on the same file: it is refused with a
// message naming the first process and what to do instead, and the first
// one is unharmed. Once the first stops, the file is free again.
func TestSQLiteRefusesSecondProcess(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dataDir := t.TempDir()
	first := startServer(t, offlineConfig(t, dataDir, ""), dataDir)
	first.mu.Lock()
	pid := first.cmd.Process.Pid
	first.mu.Unlock()

	second := offlineConfig(t, dataDir, "")
	second["listen"] = freeAddr(t)
	secondPath := filepath.Join(t.TempDir(), "second.yaml")
	writeConfig(t, secondPath, second)
	for _, command := range []string{"serve", "migrate"} {
		code, out := runCommand(ctx, t, command, "--config", secondPath)
		if code != 1 {
			t.Errorf("second %s exited with %d, want 1; output:\n%s", command, code, out)
		}
		for _, want := range []string{
			"another certkeeper process (pid " + strconv.Itoa(pid) + ")",
			filepath.Join(dataDir, "certkeeper.db.lock"),
			"use PostgreSQL",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("second %s output does not mention %q:\n%s", command, want, out)
			}
		}
	}
	if !first.pingOK(ctx) {
		t.Fatal("the first process stopped answering")
	}
	if err := first.stop(); err != nil {
		t.Fatalf("stopping the first process: %v", err)
	}
	if code, out := runCommand(ctx, t, "migrate", "--config", secondPath); code != 0 {
		t.Errorf("migrate after the first process stopped exited with %d:\n%s", code, out)
	}
}

// TestMigrateCommand runs certkeeper migrate on an empty database, then
// again: the second run has nothing left to do, and serve starts on the
// migrated database without migrating.
func TestMigrateCommand(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db string) {
		ctx := testCtx(t)
		dataDir := t.TempDir()
		database := ""
		if db == "postgres" {
			database = testenv.PostgresURL(t)
		}
		cfg := offlineConfig(t, dataDir, database)
		path := filepath.Join(t.TempDir(), "certkeeper.yaml")
		writeConfig(t, path, cfg)

		code, out := runCommand(ctx, t, "migrate", "--config", path)
		if code != 0 || !strings.Contains(out, "database is up to date") || strings.Contains(out, "applied now: 0") ||
			!strings.Contains(out, `msg="applied migration"`) {
			t.Fatalf("first migrate: exit %d, want 0 applying every migration; output:\n%s", code, out)
		}
		code, out = runCommand(ctx, t, "migrate", "--config", path)
		if code != 0 || !strings.Contains(out, "applied now: 0") || strings.Contains(out, `msg="applied migration"`) {
			t.Fatalf("second migrate: exit %d, want 0 with nothing applied; output:\n%s", code, out)
		}

		s := startServer(t, cfg, dataDir)
		log, err := os.ReadFile(s.logPath)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(log, []byte("applied migration")) || bytes.Contains(log, []byte("applied job queue migrations")) {
			t.Errorf("serve migrated a database that migrate had brought up to date:\n%s", log)
		}
	})
}
