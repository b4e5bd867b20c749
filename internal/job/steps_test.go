package job_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/job"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// quickStepsIssuer enters every step of an issuance at once, as against a
// CA that answers at once, then waits for the test.
type quickStepsIssuer struct {
	*heldIssuer
}

var quickSteps = []operation.Step{operation.StepCAA, operation.StepOrdering, operation.StepPresenting,
	operation.StepPropagation, operation.StepValidating, operation.StepFinalizing}

func (q quickStepsIssuer) Obtain(ctx context.Context, req issuer.Request, _ issuer.Solver, progress issuer.Progress) (*issuer.Certificate, error) {
	for _, s := range quickSteps {
		progress(ctx, s)
	}
	q.started <- req.Names[0]
	select {
	case <-q.release:
		return selfSigned(req.Names)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q quickStepsIssuer) Candidates([]string) ([]job.CA, error)     { return []job.CA{q}, nil }
func (q quickStepsIssuer) ForVersion(string, string) (job.CA, error) { return q, nil }

// TestStepsAreWrittenTogether checks that steps entered in quick succession
// are written together, not one write each (SQLite's one writer was the
// queue of issue 11's 200-certificate run), that they still reach the
// database while the operation runs, and that the end is written last.
func TestStepsAreWrittenTogether(t *testing.T) {
	t.Parallel()
	st := openStore(t, filepath.Join(t.TempDir(), "certkeeper.db"))
	// Count every write of an operation row.
	for _, q := range []string{
		`CREATE TABLE test_operation_writes (id TEXT NOT NULL)`,
		`CREATE TRIGGER test_count_operation_writes AFTER UPDATE ON operations BEGIN
			INSERT INTO test_operation_writes VALUES (NEW.id); END`,
	} {
		if _, err := st.DB().ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	key, _, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	iss := quickStepsIssuer{newHeldIssuer()}
	q := startQueue(t, st, key, iss, time.Minute)

	id, err := q.Enqueue(t.Context(), operation.KindIssue, spec("quick"))
	if err != nil {
		t.Fatal(err)
	}
	<-iss.started
	waitFor(t, "the quickly entered steps in the database", func() bool {
		return len(operationStatus(t, st, id).Steps) == len(quickSteps)
	})
	writes := func() int {
		var n int
		if err := st.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM test_operation_writes WHERE id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// One write for "running", at most two more for the six steps (one at
	// once if the interval since "running" had passed, one for the rest).
	if n := writes(); n > 3 {
		t.Errorf("%d writes of the operation for %d steps entered at once; want them written together", n, len(quickSteps))
	}
	close(iss.release)
	waitFor(t, "the operation to succeed", func() bool {
		return operationStatus(t, st, id).Status == operation.StatusSucceeded
	})
	time.Sleep(3 * 100 * time.Millisecond) // longer than any step write could still wait
	op := operationStatus(t, st, id)
	if op.Status != operation.StatusSucceeded || len(op.Steps) < len(quickSteps) {
		t.Fatalf("operation after the end = %s with %d steps; want succeeded with every step", op.Status, len(op.Steps))
	}
	for _, s := range op.Steps {
		if s.FinishedAt == nil {
			t.Errorf("step %s is not finished in the final record: a step write came after the end", s.Name)
		}
	}
}
