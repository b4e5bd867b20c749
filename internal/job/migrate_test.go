package job_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/certkeeper/certkeeper/internal/job"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopPostgres()
	os.Exit(code)
}

// TestMigrateOnce runs the job queue's migrations from several replicas at
// once on an empty database: one of them applies every version, the others
// find nothing to do, and none fails.
func TestMigrateOnce(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			dsn, n := filepath.Join(t.TempDir(), "certkeeper.db"), 1 // one process per SQLite file
			if db == "postgres" {
				dsn, n = testenv.PostgresURL(t), 4
			}
			logger := slog.New(slog.DiscardHandler)
			stores := make([]*store.Store, n)
			for i := range stores {
				st, err := store.Open(t.Context(), dsn, logger)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				stores[i] = st
			}
			start := make(chan struct{})
			applied := make([][]int, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i, st := range stores {
				wg.Go(func() {
					<-start
					applied[i], errs[i] = job.Migrate(t.Context(), st, logger)
				})
			}
			close(start)
			wg.Wait()
			migrators := 0
			for i := range stores {
				if errs[i] != nil {
					t.Errorf("Migrate %d: %v", i, errs[i])
				}
				if len(applied[i]) > 0 {
					migrators++
				}
			}
			if migrators != 1 {
				t.Errorf("%d replicas applied migrations (%v), want 1", migrators, applied)
			}
			// Again: nothing left to do.
			again, err := job.Migrate(t.Context(), stores[0], logger)
			if err != nil || len(again) != 0 {
				t.Errorf("second Migrate applied %v, %v; want nothing", again, err)
			}
		})
	}
}
