package testenv

import (
	"context"
	"net/url"
	"testing"

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
