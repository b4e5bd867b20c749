package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// PrivatePostgres is a throwaway PostgreSQL cluster of one test, which the
// test may restart, crash, stop and start underneath the code it tests:
// unlike PostgresURL's shared server, nothing else uses it. It keeps its
// port across restarts. Its methods are safe for concurrent use.
type PrivatePostgres struct {
	// URL is the cluster's database "certkeeper" (created empty).
	URL string
	// AdminURL is its maintenance database "postgres".
	AdminURL string

	mu      sync.Mutex
	binDir  string
	dataDir string
	logPath string
	opts    string
	asUser  string
	port    string
	running bool
}

// StartPrivatePostgres runs initdb and starts a cluster of the test's own
// on a free 127.0.0.1 port (as the postgres user when running as root:
// initdb refuses root), with a database "certkeeper". The cluster is stopped
// and removed in t.Cleanup. Without PostgreSQL binaries the test is skipped,
// or fails when the CI environment variable is set. Unlike the shared
// server, the cluster is durable (fsync on), so that a crash with
// Crash exercises PostgreSQL's recovery as a real one would.
func StartPrivatePostgres(t testing.TB) *PrivatePostgres {
	t.Helper()
	binDir, err := postgresBinDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("testenv: no PostgreSQL: %v", err)
		}
		t.Skipf("testenv: no PostgreSQL binaries: %v", err)
	}
	asUser := ""
	if os.Geteuid() == 0 {
		asUser = "postgres"
		if _, err := user.Lookup(asUser); err != nil {
			t.Fatalf("testenv: running as root and no postgres user to run the server as: %v", err)
		}
	}
	baseDir, err := os.MkdirTemp("", "certkeeper-pgprivate-")
	if err != nil {
		t.Fatalf("testenv: creating cluster directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(baseDir) })
	p := &PrivatePostgres{
		binDir: binDir, asUser: asUser,
		dataDir: filepath.Join(baseDir, "data"), logPath: filepath.Join(baseDir, "postgres.log"),
	}
	sockDir := filepath.Join(baseDir, "sock")
	for _, d := range []string{p.dataDir, sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("testenv: creating %s: %v", d, err)
		}
	}
	if asUser != "" {
		if err := chownTree(baseDir, asUser); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	initdb := pgCommand(asUser, filepath.Join(binDir, "initdb"),
		"-D", p.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--data-checksums")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("testenv: running initdb: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = p.Stop("immediate") })

	var startErr error
	for range 3 { // a free port may be taken between choosing and binding it
		_, port, _ := net.SplitHostPort(pgFreeAddr())
		p.port = port
		p.opts = fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %s -c max_connections=200", sockDir, port)
		if startErr = p.Start(); startErr == nil {
			p.AdminURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable", port)
			p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%s/certkeeper?sslmode=disable", port)
			break
		}
	}
	if startErr != nil {
		t.Fatalf("testenv: %v", startErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pgExec(ctx, p.AdminURL, "CREATE DATABASE certkeeper"); err != nil {
		t.Fatalf("testenv: creating database certkeeper: %v", err)
	}
	return p
}

// Start starts the stopped cluster and waits until it accepts connections
// (after crash recovery, when it was crashed).
func (p *PrivatePostgres) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return nil
	}
	cmd := pgCommand(p.asUser, filepath.Join(p.binDir, "pg_ctl"), "-D", p.dataDir, "-l", p.logPath, "-w", "-t", "120", "-o", p.opts, "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		logText, _ := os.ReadFile(p.logPath)
		return fmt.Errorf("running pg_ctl start: %w: %s\n%s", err, out, pgTail(logText, 4000))
	}
	p.running = true
	return nil
}

// Stop stops the cluster in the given pg_ctl shutdown mode: "fast" ends
// the sessions and checkpoints, "immediate" kills every server process
// without a checkpoint, as a crash would, so that the next start recovers
// from the WAL.
func (p *PrivatePostgres) Stop(mode string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return nil
	}
	cmd := pgCommand(p.asUser, filepath.Join(p.binDir, "pg_ctl"), "-D", p.dataDir, "-m", mode, "-w", "-t", "60", "stop")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("running pg_ctl stop -m %s: %w: %s", mode, err, out)
	}
	p.running = false
	return nil
}

// Restart stops the cluster in the given mode (see Stop) and starts it
// again, as pg_ctl restart -m mode does.
func (p *PrivatePostgres) Restart(mode string) error {
	if err := p.Stop(mode); err != nil {
		return err
	}
	return p.Start()
}

// BinDir is the directory of the PostgreSQL programs (pg_amcheck among
// them, when installed).
func (p *PrivatePostgres) BinDir() string { return p.binDir }

// Log returns the server's log so far.
func (p *PrivatePostgres) Log() string {
	out, _ := os.ReadFile(p.logPath)
	return string(out)
}

// Amcheck runs pg_amcheck on the database "certkeeper" — every table's heap
// and every B-tree index, with --heapallindexed (every row is found in each
// of its table's indexes) and --parent-check — installing the amcheck
// extension first. It returns pg_amcheck's output and an error when it
// reports corruption or cannot run (ErrNoAmcheck when the program is not
// installed).
func (p *PrivatePostgres) Amcheck(ctx context.Context) (string, error) {
	prog := filepath.Join(p.binDir, "pg_amcheck")
	if _, err := os.Stat(prog); err != nil {
		return "", ErrNoAmcheck
	}
	cmd := exec.CommandContext(ctx, prog, "-h", "127.0.0.1", "-p", p.port, "-U", "postgres", "--install-missing",
		"--heapallindexed", "--parent-check", "-v", "certkeeper")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("pg_amcheck: %w: %s", err, pgTail(out, 4000))
	}
	return string(out), nil
}

// ErrNoAmcheck is Amcheck's error when pg_amcheck is not installed.
var ErrNoAmcheck = errors.New("pg_amcheck is not installed")

// VerifyChecksums stops the cluster (mode fast) and runs pg_checksums
// --check over every data page (the cluster is made with data checksums),
// then starts it again. It returns pg_checksums' report.
func (p *PrivatePostgres) VerifyChecksums() (string, error) {
	if err := p.Stop("fast"); err != nil {
		return "", err
	}
	cmd := pgCommand(p.asUser, filepath.Join(p.binDir, "pg_checksums"), "--check", "-D", p.dataDir)
	out, err := cmd.CombinedOutput()
	if serr := p.Start(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return string(out), fmt.Errorf("pg_checksums --check: %w: %s", err, out)
	}
	return string(out), nil
}
