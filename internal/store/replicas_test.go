package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestSQLiteIsOneProcess opens a SQLite file that is already open: the
// second Open is refused with a message that says what to do, until the
// first Store closes.
func TestSQLiteIsOneProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "certkeeper.db")
	first := open(t, path)
	_, err := store.Open(t.Context(), path, slog.New(slog.DiscardHandler))
	if !errors.Is(err, store.ErrDatabaseInUse) {
		t.Fatalf("second Open error = %v, want ErrDatabaseInUse", err)
	}
	for _, want := range []string{path + ".lock", "another certkeeper process", "PostgreSQL", "several replicas"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, path) // free again
}

// replicas opens n Stores on one database: separate pools, as separate
// processes have. SQLite admits one.
func replicas(t *testing.T, dsn string, n int) []*store.Store {
	t.Helper()
	if !store.IsPostgresURL(dsn) {
		n = 1
	}
	out := make([]*store.Store, n)
	for i := range out {
		out[i] = open(t, dsn)
	}
	return out
}

func TestWithLock(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		stores := replicas(t, dsn, 3)
		ctx := t.Context()

		t.Run("excludes", func(t *testing.T) {
			var inside, most, entered atomic.Int32
			var wg sync.WaitGroup
			for i := range 12 {
				st := stores[i%len(stores)]
				wg.Go(func() {
					err := st.WithLock(ctx, "shared", func(context.Context) error {
						n := inside.Add(1)
						for {
							m := most.Load()
							if n <= m || most.CompareAndSwap(m, n) {
								break
							}
						}
						entered.Add(1)
						time.Sleep(5 * time.Millisecond) // widen the window another holder would show in
						inside.Add(-1)
						return nil
					})
					if err != nil {
						t.Errorf("WithLock: %v", err)
					}
				})
			}
			wg.Wait()
			if most.Load() != 1 || entered.Load() != 12 {
				t.Errorf("at most %d holders at once over %d entries, want 1 over 12", most.Load(), entered.Load())
			}
		})

		t.Run("names are independent", func(t *testing.T) {
			holding := make(chan struct{})
			release := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- stores[0].WithLock(ctx, "a", func(context.Context) error {
					close(holding)
					<-release
					return nil
				})
			}()
			<-holding
			other := stores[len(stores)-1]
			if err := other.WithLock(ctx, "b", func(context.Context) error { return nil }); err != nil {
				t.Errorf("lock b while a is held: %v", err)
			}
			// a itself waits until ctx ends.
			waitCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			err := other.WithLock(waitCtx, "a", func(context.Context) error {
				t.Error("lock a taken while held")
				return nil
			})
			cancel()
			if err == nil {
				t.Error("WithLock on a held lock returned nil when its context ended")
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})

		t.Run("released after an error", func(t *testing.T) {
			boom := errors.New("boom")
			if err := stores[0].WithLock(ctx, "c", func(context.Context) error { return boom }); !errors.Is(err, boom) {
				t.Fatalf("WithLock error = %v, want fn's", err)
			}
			if err := stores[len(stores)-1].WithLock(ctx, "c", func(context.Context) error { return nil }); err != nil {
				t.Fatalf("lock after an error: %v", err)
			}
		})
	})
}

// TestConcurrentOpenMigratesOnce opens several Stores on an empty
// PostgreSQL database at once, as replicas starting together.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			<-start
			st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
			if err == nil {
				st.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	st := open(t, dsn)
	got, err := st.Migrations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(migrationFiles(t), got); diff != "" {
		t.Errorf("migrations (-want +got):\n%s", diff)
	}
}

// migrationFiles returns the versions of the migrations in the source tree.
func migrationFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("listing migrations: %v (%d files)", err, len(files))
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = strings.TrimSuffix(filepath.Base(f), ".sql")
	}
	return out
}

func insertOp(t *testing.T, st *store.Store, cert string, status operation.Status) operation.Operation {
	t.Helper()
	now := time.Now().UTC()
	op := operation.Operation{ID: operation.NewID(), Kind: operation.KindIssue, CertificateName: cert,
		Status: operation.StatusPending, CreatedAt: now, UpdatedAt: now}
	spec := certificate.Spec{Name: cert, DNSNames: []string{cert + ".example.test"}, KeyType: "EC"}
	if err := st.InsertOperation(t.Context(), st.DB(), op, spec); err != nil {
		t.Fatal(err)
	}
	if status != operation.StatusPending {
		op.Status = status
		if err := st.UpdateOperation(t.Context(), st.DB(), op); err != nil {
			t.Fatal(err)
		}
	}
	return op
}

func TestLeases(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		stores := replicas(t, dsn, 2)
		st, other := stores[0], stores[len(stores)-1]
		ctx := t.Context()
		a := insertOp(t, st, "c1", operation.StatusRunning)
		b := insertOp(t, st, "c1", operation.StatusPending)

		acquire := func(s *store.Store, op operation.Operation, ttl time.Duration) (bool, string) {
			t.Helper()
			held, holder, err := s.AcquireLease(ctx, op.CertificateName, op.ID, ttl)
			if err != nil {
				t.Fatalf("AcquireLease(%s): %v", op.ID, err)
			}
			return held, holder
		}
		if held, _ := acquire(st, a, time.Minute); !held {
			t.Fatal("a did not get a free lease")
		}
		if held, holder := acquire(other, b, time.Minute); held || holder != a.ID {
			t.Errorf("b: held = %t, holder %s; want false, a (%s)", held, holder, a.ID)
		}
		if held, _ := acquire(other, a, time.Minute); !held {
			t.Error("a did not get its own lease again (a job rescued on another replica)")
		}
		if err := other.RenewLease(ctx, "c1", b.ID, time.Minute); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RenewLease by b = %v, want ErrNotFound", err)
		}
		if err := st.RenewLease(ctx, "c1", a.ID, time.Minute); err != nil {
			t.Errorf("RenewLease by a: %v", err)
		}
		if err := other.ReleaseLease(ctx, "c1", b.ID); err != nil {
			t.Fatal(err)
		}
		if held, _ := acquire(st, b, time.Minute); held {
			t.Error("b got the lease after releasing one it did not hold")
		}

		// The holder finishes without releasing (it died just after): the
		// lease is free for the next operation.
		a.Status = operation.StatusSucceeded
		if err := st.UpdateOperation(ctx, st.DB(), a); err != nil {
			t.Fatal(err)
		}
		if held, _ := acquire(other, b, time.Minute); !held {
			t.Error("b did not get the lease of a finished operation")
		}

		// An expired lease is free even while its holder still runs.
		c := insertOp(t, st, "c2", operation.StatusRunning)
		d := insertOp(t, st, "c2", operation.StatusPending)
		if held, _ := acquire(st, c, -time.Second); !held {
			t.Fatal("c did not get a free lease")
		}
		if held, _ := acquire(other, d, time.Minute); !held {
			t.Error("d did not get an expired lease")
		}
		if err := st.ReleaseLease(ctx, "c2", d.ID); err != nil {
			t.Fatal(err)
		}
		if held, _ := acquire(st, c, time.Minute); !held {
			t.Error("c did not get the released lease")
		}
	})
}

// TestLeaseRace has many operations of one certificate take its lease at
// once, from every replica: exactly one gets it.
func TestLeaseRace(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		stores := replicas(t, dsn, 3)
		ops := make([]operation.Operation, 9)
		for i := range ops {
			ops[i] = insertOp(t, stores[0], "race", operation.StatusPending)
		}
		for round := range 5 {
			cert := fmt.Sprintf("race-%d", round)
			start := make(chan struct{})
			var wg sync.WaitGroup
			var winners atomic.Int32
			for i, op := range ops {
				st := stores[i%len(stores)]
				wg.Go(func() {
					<-start
					held, _, err := st.AcquireLease(t.Context(), cert, op.ID, time.Minute)
					if err != nil {
						t.Errorf("AcquireLease: %v", err)
					}
					if held {
						winners.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			if n := winners.Load(); n != 1 {
				t.Errorf("round %d: %d operations hold the lease, want 1", round, n)
			}
		}
	})
}

func TestPrune(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		oldSucceeded := insertOp(t, st, "p1", operation.StatusSucceeded)
		oldFailed := insertOp(t, st, "p2", operation.StatusFailed)
		oldRunning := insertOp(t, st, "p3", operation.StatusRunning)
		oldPending := insertOp(t, st, "p4", operation.StatusPending)
		oldWithRecords := insertOp(t, st, "p5", operation.StatusFailed)
		if err := st.SetPendingChallenges(ctx, oldWithRecords.ID, []byte(`[{"domain":"p5.example.test"}]`)); err != nil {
			t.Fatal(err)
		}
		recent := insertOp(t, st, "p6", operation.StatusSucceeded)
		long := time.Now().Add(-48 * time.Hour).UnixMicro()
		for _, op := range []operation.Operation{oldSucceeded, oldFailed, oldRunning, oldPending, oldWithRecords} {
			if _, err := st.DB().ExecContext(ctx, `UPDATE operations SET updated_at = $1 WHERE id = $2`, long, op.ID); err != nil {
				t.Fatal(err)
			}
		}
		if held, _, err := st.AcquireLease(ctx, "expired", recent.ID, -time.Minute); err != nil || !held {
			t.Fatalf("AcquireLease: %t, %v", held, err)
		}
		if held, _, err := st.AcquireLease(ctx, "live", oldRunning.ID, time.Hour); err != nil || !held {
			t.Fatalf("AcquireLease: %t, %v", held, err)
		}

		got, err := st.Prune(ctx, time.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(store.Pruned{Operations: 2, Leases: 1}, got); diff != "" {
			t.Errorf("Prune (-want +got):\n%s", diff)
		}
		for _, op := range []operation.Operation{oldSucceeded, oldFailed} {
			if _, err := st.Operation(ctx, op.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("operation %s (%s) still there: %v", op.CertificateName, op.Status, err)
			}
		}
		for _, op := range []operation.Operation{oldRunning, oldPending, oldWithRecords, recent} {
			if _, err := st.Operation(ctx, op.ID); err != nil {
				t.Errorf("operation %s (%s) was pruned: %v", op.CertificateName, op.Status, err)
			}
		}
		if held, holder, err := st.AcquireLease(ctx, "live", recent.ID, time.Hour); err != nil || held || holder != oldRunning.ID {
			t.Errorf("the live lease was pruned: held %t, holder %s, %v", held, holder, err)
		}
	})
}
