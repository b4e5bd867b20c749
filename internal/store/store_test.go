package store_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
	"log/slog"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopPostgres()
	os.Exit(code)
}

// eachDatabase runs fn against a fresh SQLite file and a fresh PostgreSQL
// database.
func eachDatabase(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, filepath.Join(t.TempDir(), "certkeeper.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, testenv.PostgresURL(t))
	})
}

func open(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		count := func(st *store.Store) int {
			var n int
			if err := st.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		first := open(t, dsn)
		want := count(first)
		first.Close()
		if got := count(open(t, dsn)); got != want || want == 0 {
			t.Errorf("schema_migrations has %d rows after opening twice, %d after once", got, want)
		}
	})
}

func TestVersions(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		spec := certificate.Spec{Name: "www-example-test", DNSNames: []string{"www.example.test"}, KeyType: "RSA", KeySize: 2048}
		base := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
		v1 := store.Version{ID: "aa", Name: spec.Name, Spec: spec, ACMEEndpoint: "https://ca/dir", Serial: "01",
			Thumbprint: "T1", NotBefore: base, NotAfter: base.Add(90 * 24 * time.Hour), CertPEM: "C1", ChainPEM: "CH",
			KeySealed: "v1:sealed", CertURL: "https://ca/cert/1", CreatedAt: base}
		v2 := v1
		v2.ID, v2.Serial, v2.Thumbprint, v2.CreatedAt = "bb", "02", "T2", base.Add(time.Hour)
		other := v1
		other.ID, other.Name, other.Spec.Name = "cc", "api-example-test", "api-example-test"

		for _, v := range []store.Version{v1, v2, other} {
			if err := st.InsertVersion(ctx, v); err != nil {
				t.Fatalf("InsertVersion(%s): %v", v.ID, err)
			}
		}
		if err := st.InsertVersion(ctx, v1); !errors.Is(err, store.ErrExists) {
			t.Errorf("InsertVersion of an existing id = %v, want ErrExists", err)
		}
		got, err := st.LatestVersion(ctx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(v2, got); diff != "" {
			t.Errorf("LatestVersion (-want +got):\n%s", diff)
		}
		if n, err := st.CountVersions(ctx, spec.Name); err != nil || n != 2 {
			t.Errorf("CountVersions = %d, %v; want 2", n, err)
		}
		list, err := st.LatestVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// A listing leaves out the PEM data and the sealed key.
		bare := func(v store.Version) store.Version {
			v.CertPEM, v.ChainPEM, v.KeySealed = "", "", ""
			return v
		}
		if diff := cmp.Diff([]store.Version{bare(other), bare(v2)}, list); diff != "" {
			t.Errorf("LatestVersions (-want +got):\n%s", diff)
		}
		if _, err := st.LatestVersion(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LatestVersion(nope) = %v, want ErrNotFound", err)
		}
		at := base.Add(2 * time.Hour)
		if err := st.MarkRevoked(ctx, "bb", at); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.VersionByID(ctx, "bb"); !got.RevokedAt.Equal(at) {
			t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, at)
		}
		if err := st.MarkRevoked(ctx, "zz", at); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MarkRevoked(zz) = %v, want ErrNotFound", err)
		}
	})
}

func TestOperations(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		op := operation.Operation{ID: operation.NewID(), Kind: operation.KindIssue, CertificateName: "x",
			Status: operation.StatusPending, CreatedAt: now, UpdatedAt: now, CreatedBy: "key:k1", CreatedByName: "ci"}
		spec := certificate.Spec{Name: "x", DNSNames: []string{"x.example.test"}, KeyType: "EC", KeyCurveName: "P-256",
			Tags: map[string]string{"team": "web"}}

		// A rolled-back transaction leaves nothing behind.
		err := st.Tx(ctx, func(tx *sql.Tx) error {
			if err := st.InsertOperation(ctx, tx, op, spec); err != nil {
				return err
			}
			return errors.New("abort")
		})
		if err == nil {
			t.Fatal("Tx returned nil for a failing function")
		}
		if _, err := st.Operation(ctx, op.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("operation after rollback: %v, want ErrNotFound", err)
		}

		if err := st.InsertOperation(ctx, st.DB(), op, spec); err != nil {
			t.Fatal(err)
		}
		gotSpec, err := st.OperationSpec(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(spec, gotSpec); diff != "" {
			t.Errorf("OperationSpec (-want +got):\n%s", diff)
		}
		finished := now.Add(time.Second)
		op.Status, op.Attempt, op.FailedStep, op.Error = operation.StatusFailed, 2, operation.StepValidating, "CA said no"
		op.Steps = []operation.StepRecord{{Name: operation.StepOrdering, StartedAt: now, FinishedAt: &finished}}
		if err := st.UpdateOperation(ctx, st.DB(), op); err != nil {
			t.Fatal(err)
		}
		got, err := st.Operation(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(op, got, cmpIgnoreUpdated); diff != "" {
			t.Errorf("Operation (-want +got):\n%s", diff)
		}

		if err := st.SetPendingChallenges(ctx, op.ID, []byte(`[{"domain":"x"}]`)); err != nil {
			t.Fatal(err)
		}
		if raw, err := st.PendingChallenges(ctx, op.ID); err != nil || string(raw) != `[{"domain":"x"}]` {
			t.Errorf("PendingChallenges = %q, %v", raw, err)
		}
		if err := st.UpdateOperation(ctx, st.DB(), operation.Operation{ID: "missing"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateOperation(missing) = %v, want ErrNotFound", err)
		}
	})
}

var cmpIgnoreUpdated = cmp.Transformer("dropUpdated", func(op operation.Operation) operation.Operation {
	op.UpdatedAt = time.Time{}
	return op
})

func TestAccountsAndKeys(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		if _, err := st.Account(ctx, "https://ca/dir"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Account before save = %v, want ErrNotFound", err)
		}
		a := store.Account{DirectoryURL: "https://ca/dir", URI: "https://ca/acct/1", KeySealed: "v1:k", Contacts: []string{"mailto:a@example.test"}}
		if err := st.SaveAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		a.URI = "https://ca/acct/2"
		if err := st.SaveAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := st.Account(ctx, a.DirectoryURL)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("Account (-want +got):\n%s", diff)
		}

		keys := []store.APIKey{{Name: "ci", Hash: "ab", Roles: []string{"Acmebot.IssueCertificate"}, Zones: []string{},
			Source: "config", ID: store.ConfigKeyID("ci"), CreatedBy: "config"},
			{Name: "ro", Hash: "cd", Roles: []string{}, Zones: []string{"example.test"}, Source: "config",
				ID: store.ConfigKeyID("ro"), CreatedBy: "config"}}
		if err := st.SyncConfigAPIKeys(ctx, keys); err != nil {
			t.Fatal(err)
		}
		if err := st.SyncConfigAPIKeys(ctx, keys[:1]); err != nil {
			t.Fatal(err)
		}
		gotKeys, err := st.APIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range gotKeys {
			gotKeys[i].CreatedAt = time.Time{}
		}
		if diff := cmp.Diff(keys[:1], gotKeys); diff != "" {
			t.Errorf("APIKeys after removing one from config (-want +got):\n%s", diff)
		}
	})
}

// TestSyncConfigAPIKeysConcurrently is replicas starting together: each
// syncs the same configured keys, and none fails on the others' rows.
func TestSyncConfigAPIKeysConcurrently(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		stores := []*store.Store{open(t, dsn)}
		if stores[0].Dialect() == store.Postgres {
			stores = append(stores, open(t, dsn)) // SQLite serves one process: its goroutines race instead
		}
		keys := []store.APIKey{{Name: "ci", Hash: "ab", Roles: []string{"Acmebot.IssueCertificate"}}}
		errs := make(chan error, 8)
		for i := range 8 {
			go func() { errs <- stores[i%len(stores)].SyncConfigAPIKeys(t.Context(), keys) }()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Errorf("SyncConfigAPIKeys: %v", err)
			}
		}
	})
}
