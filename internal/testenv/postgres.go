package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURLEnv names the environment variable that points the tests at an
// existing PostgreSQL server (a URL whose user may create databases). When it
// is empty, the test process starts a throwaway cluster of its own.
const PostgresURLEnv = "CERTKEEPER_TEST_POSTGRES_URL"

// pgCluster is the server every PostgresURL of this process creates its
// databases on.
var pgCluster struct {
	mu       sync.Mutex
	tried    bool
	adminURL string // a URL of the maintenance database "postgres"
	err      error
	dataDir  string // set when this process started the cluster
	baseDir  string
	pgCtl    string
	asUser   string // run pg_ctl as this user ("" = the current one)
}

// PostgresURL returns the URL of a new, empty database (ck_<random>) on a
// shared PostgreSQL server, and drops the database in t.Cleanup. The server is
// the one named by CERTKEEPER_TEST_POSTGRES_URL, or else a throwaway cluster
// that the first call of the process starts on a free 127.0.0.1 port (stop it
// with StopPostgres). When no PostgreSQL can be found or started, the test is
// skipped, or fails when the CI environment variable is set, so that a missing
// database never passes silently in CI. Safe for concurrent use.
func PostgresURL(t testing.TB) string {
	t.Helper()
	adminURL, err := postgresAdminURL()
	if err != nil {
		if os.Getenv(PostgresURLEnv) != "" || os.Getenv("CI") != "" {
			t.Fatalf("testenv: no PostgreSQL: %v", err)
		}
		t.Skipf("testenv: no PostgreSQL (set %s or install the PostgreSQL server): %v", PostgresURLEnv, err)
	}

	name := "ck_" + pgRandomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pgExec(ctx, adminURL, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the connections of a process the test left behind.
		if err := pgExec(ctx, adminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("testenv: parsing PostgreSQL URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// StopPostgres stops the cluster that PostgresURL started in this process and
// removes its files; a later PostgresURL starts a new one. It does nothing when no cluster was started (or the
// server came from CERTKEEPER_TEST_POSTGRES_URL). Call it from TestMain after
// m.Run.
func StopPostgres() {
	pgCluster.mu.Lock()
	defer pgCluster.mu.Unlock()
	pgCluster.tried, pgCluster.adminURL, pgCluster.err = false, "", nil
	if pgCluster.dataDir == "" {
		return
	}
	cmd := pgCommand(pgCluster.asUser, pgCluster.pgCtl, "-D", pgCluster.dataDir, "-m", "immediate", "-w", "stop")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stopping PostgreSQL: %v: %s\n", err, out)
	}
	_ = os.RemoveAll(pgCluster.baseDir)
	pgCluster.dataDir = ""
}

// postgresAdminURL returns the admin URL of the server, finding or starting
// it on the first call (and the first call after StopPostgres).
func postgresAdminURL() (string, error) {
	pgCluster.mu.Lock()
	defer pgCluster.mu.Unlock()
	if !pgCluster.tried {
		pgCluster.tried = true
		pgCluster.adminURL, pgCluster.err = postgresServer()
	}
	return pgCluster.adminURL, pgCluster.err
}

// postgresServer returns the admin URL of the server to use, starting a
// cluster when none is configured. pgCluster.mu is held.
func postgresServer() (string, error) {
	if raw := os.Getenv(PostgresURLEnv); raw != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pgExec(ctx, raw, "SELECT 1"); err != nil {
			return "", fmt.Errorf("connecting to %s: %w", PostgresURLEnv, err)
		}
		return raw, nil
	}
	return startPostgres()
}

// startPostgres runs initdb and pg_ctl start in a temporary directory. As root
// it runs them as the postgres user, because initdb refuses root.
func startPostgres() (string, error) {
	binDir, err := postgresBinDir()
	if err != nil {
		return "", err
	}
	asUser := ""
	if os.Geteuid() == 0 {
		asUser = "postgres"
		if _, err := user.Lookup(asUser); err != nil {
			return "", fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
		}
	}

	baseDir, err := os.MkdirTemp("", "certkeeper-pg-")
	if err != nil {
		return "", fmt.Errorf("creating cluster directory: %w", err)
	}
	dataDir := filepath.Join(baseDir, "data")
	sockDir := filepath.Join(baseDir, "sock")
	logPath := filepath.Join(baseDir, "postgres.log")
	for _, d := range []string{dataDir, sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			_ = os.RemoveAll(baseDir)
			return "", fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if asUser != "" {
		if err := chownTree(baseDir, asUser); err != nil {
			_ = os.RemoveAll(baseDir)
			return "", err
		}
	}

	initdb := pgCommand(asUser, filepath.Join(binDir, "initdb"),
		"-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(baseDir)
		return "", fmt.Errorf("running initdb: %w: %s", err, out)
	}

	pgCtl := filepath.Join(binDir, "pg_ctl")
	var startErr error
	for range 3 { // a free port may be taken between choosing and binding it
		_, port, _ := net.SplitHostPort(pgFreeAddr())
		opts := fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
			sockDir, port)
		start := pgCommand(asUser, pgCtl, "-D", dataDir, "-l", logPath, "-w", "-t", "60", "-o", opts, "start")
		out, err := start.CombinedOutput()
		if err == nil {
			pgCluster.dataDir, pgCluster.baseDir, pgCluster.pgCtl, pgCluster.asUser = dataDir, baseDir, pgCtl, asUser
			return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable", port), nil
		}
		logText, _ := os.ReadFile(logPath)
		startErr = fmt.Errorf("running pg_ctl start: %w: %s\n%s", err, out, pgTail(logText, 4000))
	}
	_ = os.RemoveAll(baseDir)
	return "", startErr
}

// postgresBinDir finds the directory of initdb and pg_ctl: PATH first, then
// the newest /usr/lib/postgresql/<version>/bin.
func postgresBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return pgVersion(matches[i]) > pgVersion(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("initdb and pg_ctl not found in PATH or /usr/lib/postgresql/*/bin")
}

// pgVersion is the major version in /usr/lib/postgresql/<version>/bin/initdb.
func pgVersion(initdbPath string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdbPath))))
	return v
}

// pgCommand runs name with args, as asUser when it is not empty.
func pgCommand(asUser, name string, args ...string) *exec.Cmd {
	if asUser == "" {
		return exec.Command(name, args...)
	}
	if runuser, err := exec.LookPath("runuser"); err == nil {
		return exec.Command(runuser, append([]string{"-u", asUser, "--", name}, args...)...)
	}
	quoted := make([]string, 0, len(args)+1)
	for _, a := range append([]string{name}, args...) {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return exec.Command("su", asUser, "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
}

// chownTree gives dir and everything in it to the named user.
func chownTree(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("looking up user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("giving %s to %s: %w", dir, name, err)
	}
	return nil
}

// pgExec runs one statement on a new connection to rawURL.
func pgExec(ctx context.Context, rawURL, sql string) error {
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return err
	}
	return nil
}

// freePort returns a 127.0.0.1 address whose port was free a moment ago.
func pgFreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

func pgRandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func pgTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
