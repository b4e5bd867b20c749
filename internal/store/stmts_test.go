package store_test

import (
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
)

// The read queries go through prepared statements on SQLite (stmtCache);
// these tests check what could go wrong with reusing them, on both
// databases.

// A read answers what the latest committed write says, again and again on
// the same prepared statements: a statement left stepping after a
// one-row read would keep its connection on an old snapshot.
func TestPreparedReadsSeeEachWrite(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		op := insertOp(t, st, "stmt-reads", operation.StatusRunning)
		for i := range 40 {
			op.Error = fmt.Sprintf("attempt %d", i)
			op.Attempt = i
			if err := st.UpdateOperation(ctx, st.DB(), op); err != nil {
				t.Fatal(err)
			}
			got, err := st.Operation(ctx, op.ID)
			if err != nil {
				t.Fatalf("Operation after write %d: %v", i, err)
			}
			if got.Error != op.Error || got.Attempt != i {
				t.Fatalf("Operation after write %d = error %q attempt %d, want %q %d", i, got.Error, got.Attempt, op.Error, i)
			}
			status, err := st.OperationStatus(ctx, op.ID)
			if err != nil {
				t.Fatalf("OperationStatus after write %d: %v", i, err)
			}
			if status.Error != op.Error || status.Status != operation.StatusRunning || status.ID != op.ID {
				t.Fatalf("OperationStatus after write %d = %+v", i, status)
			}
		}
		if _, err := st.OperationStatus(ctx, operation.NewID()); err != store.ErrNotFound {
			t.Errorf("OperationStatus of an unknown id = %v, want ErrNotFound", err)
		}
	})
}

// OperationStatus returns the fields GET /api/state needs, the same as
// Operation's, and neither steps nor deliveries.
func TestOperationStatus(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		op := insertOp(t, st, "stmt-status", operation.StatusPending)
		now := time.Now().UTC()
		op.Status, op.FailedStep, op.Error, op.VersionID = operation.StatusFailed, operation.StepValidating, "boom", "v9"
		op.Steps = []operation.StepRecord{{Name: operation.StepOrdering, StartedAt: now}}
		if err := st.UpdateOperation(ctx, st.DB(), op); err != nil {
			t.Fatal(err)
		}
		full, err := st.Operation(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.OperationStatus(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := full
		want.Steps, want.Attempt, want.CreatedAt, want.UpdatedAt = nil, 0, time.Time{}, time.Time{}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("OperationStatus = %+v\nwant %+v", got, want)
		}
		if len(full.Steps) != 1 {
			t.Errorf("Operation has %d steps, want 1", len(full.Steps))
		}
	})
}

// Many goroutines read through the same statements on every connection of
// the pool while a writer changes the rows.
func TestPreparedReadsConcurrently(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		hash := fmt.Sprintf("%064x", 7)
		if err := st.InsertAPIKey(ctx, store.APIKey{ID: "k1", Name: "reader", Hash: hash, Roles: []string{"Acmebot.Reader"},
			Source: store.KeySourceManaged, CreatedBy: "test"}); err != nil {
			t.Fatal(err)
		}
		ops := make([]operation.Operation, 8)
		for i := range ops {
			ops[i] = insertOp(t, st, fmt.Sprintf("stmt-concurrent-%d", i), operation.StatusRunning)
			if err := st.EnsureDeliveries(ctx, ops[i].ID, ops[i].CertificateName, "v1", []string{"a", "b"}); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		var writer sync.WaitGroup
		writer.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				op := ops[n%len(ops)]
				op.Attempt = n
				if err := st.UpdateOperation(ctx, st.DB(), op); err != nil {
					t.Error(err)
					return
				}
			}
		})
		var readers sync.WaitGroup
		for g := range 16 {
			readers.Go(func() {
				for i := range 60 {
					op := ops[(g+i)%len(ops)]
					got, err := st.Operation(ctx, op.ID)
					if err != nil || got.ID != op.ID || got.CertificateName != op.CertificateName {
						t.Errorf("Operation(%s) = %s %s, %v", op.ID, got.ID, got.CertificateName, err)
						return
					}
					s, err := st.OperationStatus(ctx, op.ID)
					if err != nil || s.ID != op.ID || s.Status != operation.StatusRunning {
						t.Errorf("OperationStatus(%s) = %s %s, %v", op.ID, s.ID, s.Status, err)
						return
					}
					ds, err := st.Deliveries(ctx, op.ID)
					if err != nil || len(ds) != 2 || ds[0].OperationID != op.ID || ds[1].Destination != "b" {
						t.Errorf("Deliveries(%s) = %+v, %v", op.ID, ds, err)
						return
					}
					k, err := st.APIKeyByHash(ctx, hash)
					if err != nil || k.ID != "k1" {
						t.Errorf("APIKeyByHash = %+v, %v", k, err)
						return
					}
				}
			})
		}
		readers.Wait()
		close(stop)
		writer.Wait()
	})
}

// A read in progress does not see a transaction's writes until it commits,
// and sees them right after.
func TestPreparedReadsBesideTransactions(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		op := insertOp(t, st, "stmt-tx", operation.StatusRunning)
		err := st.Tx(ctx, func(tx *sql.Tx) error {
			failed := op
			failed.Status, failed.Error = operation.StatusFailed, "in the transaction"
			if err := st.UpdateOperation(ctx, tx, failed); err != nil {
				return err
			}
			// Inside the transaction: its own reads see the write ...
			var status string
			if err := tx.QueryRowContext(ctx, `SELECT status FROM operations WHERE id = $1`, op.ID).Scan(&status); err != nil {
				return err
			}
			if status != string(operation.StatusFailed) {
				t.Errorf("the transaction reads status %q, want failed", status)
			}
			// ... the store's prepared reads do not yet.
			got, err := st.OperationStatus(ctx, op.ID)
			if err != nil {
				return err
			}
			if got.Status != operation.StatusRunning {
				t.Errorf("OperationStatus during the transaction = %q, want running", got.Status)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.OperationStatus(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != operation.StatusFailed || got.Error != "in the transaction" {
			t.Errorf("OperationStatus after commit = %q %q, want failed", got.Status, got.Error)
		}
		// A rolled-back write is never seen.
		_ = st.Tx(ctx, func(tx *sql.Tx) error {
			rolled := op
			rolled.Status = operation.StatusSucceeded
			if err := st.UpdateOperation(ctx, tx, rolled); err != nil {
				t.Fatal(err)
			}
			return fmt.Errorf("roll back")
		})
		if got, err := st.OperationStatus(ctx, op.ID); err != nil || got.Status != operation.StatusFailed {
			t.Errorf("OperationStatus after rollback = %q, %v, want failed", got.Status, err)
		}
	})
}

// A statement prepared before the schema changes still reads the table
// after it: a later migration (from another replica, or a newer version)
// does not break a running process's reads.
func TestPreparedReadsAfterSchemaChange(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		op := insertOp(t, st, "stmt-schema", operation.StatusRunning)
		if _, err := st.Operation(ctx, op.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.OperationStatus(ctx, op.ID); err != nil {
			t.Fatal(err)
		}
		for _, ddl := range []string{
			`ALTER TABLE operations ADD COLUMN stmt_test_extra TEXT NOT NULL DEFAULT ''`,
			`CREATE INDEX operations_stmt_test ON operations (certificate_name, status)`,
			`DROP INDEX operations_stmt_test`,
		} {
			if _, err := st.DB().ExecContext(ctx, ddl); err != nil {
				t.Fatalf("%s: %v", ddl, err)
			}
			for range 10 { // on every connection of the pool
				got, err := st.Operation(ctx, op.ID)
				if err != nil || got.ID != op.ID {
					t.Fatalf("Operation after %q = %s, %v", ddl, got.ID, err)
				}
				s, err := st.OperationStatus(ctx, op.ID)
				if err != nil || s.Status != operation.StatusRunning {
					t.Fatalf("OperationStatus after %q = %q, %v", ddl, s.Status, err)
				}
			}
		}
		// With PostgreSQL another replica opens the same database (and runs
		// its migrations) beside this one; both read the same. SQLite's
		// file lock allows one Store per file.
		st2 := st
		if store.IsPostgresURL(dsn) {
			st2 = open(t, dsn)
		}
		if got, err := st2.OperationStatus(ctx, op.ID); err != nil || got.ID != op.ID {
			t.Errorf("OperationStatus from a second Store = %s, %v", got.ID, err)
		}
	})
}
