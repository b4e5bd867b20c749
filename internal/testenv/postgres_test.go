package testenv

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgresURL(t *testing.T) {
	var first string
	t.Run("fresh databases", func(t *testing.T) {
		a, b := PostgresURL(t), PostgresURL(t)
		if a == b {
			t.Fatalf("PostgresURL returned %q twice", a)
		}
		first = a
		for _, raw := range []string{a, b} {
			conn, err := pgx.Connect(t.Context(), raw)
			if err != nil {
				t.Fatalf("connecting to %s: %v", raw, err)
			}
			var tables int
			err = conn.QueryRow(t.Context(),
				"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables)
			if err != nil {
				t.Fatalf("counting tables: %v", err)
			}
			if tables != 0 {
				t.Errorf("new database %s has %d tables, want 0", raw, tables)
			}
			if _, err := conn.Exec(t.Context(), "CREATE TABLE t (id int)"); err != nil {
				t.Errorf("creating a table: %v", err)
			}
			_ = conn.Close(t.Context())
		}
	})
	if first == "" {
		return
	}
	t.Run("dropped after the test", func(t *testing.T) {
		u, err := url.Parse(first)
		if err != nil {
			t.Fatal(err)
		}
		name := u.Path[1:]
		u.Path = "/postgres"
		conn, err := pgx.Connect(t.Context(), u.String())
		if err != nil {
			t.Fatalf("connecting to the maintenance database: %v", err)
		}
		defer conn.Close(context.WithoutCancel(t.Context()))
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatalf("looking for database %s: %v", name, err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test ended", name)
		}
	})
}

// TestMain stops the cluster that PostgresURL started; returning hands
// m.Run's result to os.Exit.
func TestMain(m *testing.M) {
	m.Run()
	StopPostgres()
}

// TestPrivatePostgres crashes a private cluster (pg_ctl stop -m immediate)
// and restarts it fast: committed rows survive both, on the same URL, and
// the integrity checks pass.
func TestPrivatePostgres(t *testing.T) {
	t.Parallel()
	p := StartPrivatePostgres(t)
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		return pgExec(ctx, p.URL, sql)
	}
	if err := exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"immediate", "fast"} {
		if err := p.Restart(mode); err != nil {
			t.Fatalf("restart -m %s: %v", mode, err)
		}
		conn, err := pgx.Connect(t.Context(), p.URL)
		if err != nil {
			t.Fatalf("connecting after restart -m %s: %v", mode, err)
		}
		var n int
		err = conn.QueryRow(t.Context(), "SELECT count(*) FROM t").Scan(&n)
		_ = conn.Close(t.Context())
		if err != nil || n != 1000 {
			t.Fatalf("after restart -m %s: %d rows, %v; want 1000", mode, n, err)
		}
	}
	if err := p.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("a stopped cluster answered")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := p.Amcheck(t.Context()); err != nil && !errors.Is(err, ErrNoAmcheck) {
		t.Errorf("%v\n%s", err, out)
	}
	if out, err := p.VerifyChecksums(); err != nil {
		t.Errorf("%v\n%s", err, out)
	} else {
		t.Logf("pg_checksums: %s", out)
	}
}
