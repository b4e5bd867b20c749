package job

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
)

// leaseWait is how long a job whose certificate is being worked on by
// another operation waits before it looks again. Waiting does not count as
// an attempt.
const leaseWait = 2 * time.Second

// errClaimLost ends a job whose replica lost its claim on it: another
// replica took the job over, or this one could not renew it in time
// (errClaimLapsed as well).
var errClaimLost = errors.New("the job was taken over by another replica")

// errClaimLapsed is a claim lost because no renewal succeeded for half of
// rescueAfter (the database out of reach): nobody may have taken the job
// over, so the job is handed back to be tried again rather than ended.
var errClaimLapsed = errors.New("the claim on the job lapsed")

// issueWorker works one operation at a time per certificate across every
// replica: it takes the certificate's lease before the runner starts, keeps
// the lease and the job's claim alive while the runner works, and hands the
// job back when the process stops.
type issueWorker struct {
	river.WorkerDefaults[IssueArgs]
	runner  *Runner
	store   *store.Store
	timeout time.Duration
	// rescueAfter is how long the claim lasts without renewal; renewJob
	// tells whether River's rescuer reads it (PostgreSQL).
	rescueAfter time.Duration
	renewJob    bool
	// stopping ends when the queue's grace period for stopping is over.
	stopping context.Context
	logger   *slog.Logger
}

// Timeout implements river.Worker. It is rescueAfter, not the operation's
// bound: River's rescuer leaves alone a running job whose attempted_at is
// more recent than its worker's Timeout, and the renewals keep attempted_at
// recent while the job runs, so this makes a dead replica's job rescued
// rescueAfter after its last renewal. River cancels the job's context at
// that deadline too, which Work ignores (see detach).
func (w *issueWorker) Timeout(*river.Job[IssueArgs]) time.Duration { return w.rescueAfter }

// detach returns the context an operation runs under: bounded by the
// operation timeout, ended by the queue's stop and by River's own
// cancellations (a hard stop), but not by the deadline River sets from
// Timeout.
func (w *issueWorker) detach(riverCtx context.Context) (context.Context, context.CancelFunc) {
	base, cancelCause := context.WithCancelCause(context.WithoutCancel(riverCtx))
	ctx, cancelTimeout := context.WithTimeout(base, w.timeout)
	stopRiver := context.AfterFunc(riverCtx, func() {
		if !errors.Is(riverCtx.Err(), context.DeadlineExceeded) {
			cancelCause(context.Cause(riverCtx))
		}
	})
	stopQueue := context.AfterFunc(w.stopping, func() { cancelCause(errStopping) })
	return ctx, func() {
		stopRiver()
		stopQueue()
		cancelTimeout()
		cancelCause(nil)
	}
}

// errStopping cancels the operations still running when the process stops.
var errStopping = errors.New("the process is stopping")

// Retries of an issue job: a job is tried again only when the operation's
// state could not be recorded (the database was unreachable) or its process
// died, never because the CA or the DNS failed — those end the operation —
// so the wait is short at first, for a database that restarts in seconds,
// and grows to retryMax. River's default policy (attempt⁴ seconds) made an
// operation whose job had been interrupted four times wait over four
// minutes (TestChaosPostgres); with MaxAttempts 25 this policy still rides
// out about 90 minutes without a database before a job is discarded.
const (
	retryFirst = time.Second
	retryMax   = 5 * time.Minute
)

// NextRetry implements river.Worker: retryFirst after the first attempt,
// doubling up to retryMax.
func (w *issueWorker) NextRetry(j *river.Job[IssueArgs]) time.Time {
	return time.Now().Add(retryDelay(j.Attempt))
}

// retryDelay is the wait after the given attempt (1 for the first).
func retryDelay(attempt int) time.Duration {
	d := retryFirst
	for i := 1; i < attempt && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// leaseTTL is how long a certificate lease lasts without renewal: long
// enough that a job rescued from a dead replica gets it back before another
// operation of the same certificate takes it.
func (w *issueWorker) leaseTTL() time.Duration { return 2 * w.rescueAfter }

func (w *issueWorker) Work(ctx context.Context, j *river.Job[IssueArgs]) error {
	id := j.Args.OperationID
	op, err := w.store.Operation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return w.runner.Run(ctx, id) // which drops it
	}
	if err != nil {
		return err
	}
	if op.Status.Done() {
		return w.store.ReleaseLease(ctx, op.CertificateName, id)
	}
	held, holder, err := w.store.AcquireLease(ctx, op.CertificateName, id, w.leaseTTL())
	if err != nil {
		return err
	}
	if !held {
		w.markWaiting(ctx, op, holder)
		return river.JobSnooze(leaseWait)
	}

	workCtx, release := w.detach(ctx)
	defer release()
	workCtx, stop := w.keepAlive(workCtx, j, op.CertificateName)
	err = w.runner.Run(workCtx, id)
	if lost := stop(); lost != nil {
		if errors.Is(lost, errClaimLapsed) {
			// The claim could not be renewed (the database was out of
			// reach): the job row most likely is still this attempt's.
			// An error makes River retry it, and the operation resumes;
			// returning nil would mark the job completed and leave the
			// operation running with no job (TestChaosPostgres found
			// operations stuck so).
			w.logger.WarnContext(ctx, "stopped working an operation whose claim lapsed; it is tried again",
				"operation_id", id, "error", lost)
			return fmt.Errorf("operation %s: %w", id, lost)
		}
		// Another attempt runs the job now. Whatever this worker returns is
		// recorded on the job row, which that attempt works; nil is the
		// least harmful answer, and renew lets the newer attempt go on when
		// it finds its row marked completed so.
		w.logger.WarnContext(ctx, "stopped working an operation another attempt took over",
			"operation_id", id, "error", lost)
		return nil
	}
	if err != nil {
		if w.stopping.Err() != nil {
			// The process is stopping: hand the job back at once, for
			// another replica or the next start, without counting the
			// attempt. The lease stays with the operation, which continues
			// where it stopped.
			return river.JobSnooze(0)
		}
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if rerr := w.store.ReleaseLease(rctx, op.CertificateName, id); rerr != nil {
		w.logger.WarnContext(ctx, "releasing certificate lease; it expires by itself", "operation_id", id, "error", rerr)
	}
	return nil
}

// markWaiting records on a pending operation, once, that it waits for
// another operation of the same certificate.
func (w *issueWorker) markWaiting(ctx context.Context, op operation.Operation, holder string) {
	if n := len(op.Steps); n > 0 && op.Steps[n-1].Name == operation.StepWaiting {
		return
	}
	w.logger.InfoContext(ctx, "operation waits for another operation of the same certificate",
		"operation_id", op.ID, "certificate", op.CertificateName, "running_operation_id", holder)
	op.Steps = append(op.Steps, operation.StepRecord{Name: operation.StepWaiting, StartedAt: time.Now().UTC()})
	if err := w.store.UpdateOperation(ctx, w.store.DB(), op); err != nil {
		w.logger.WarnContext(ctx, "recording that an operation waits", "operation_id", op.ID, "error", err)
	}
}

// keepAlive renews the job's claim every quarter of rescueAfter while the
// operation runs: the certificate lease, and with PostgreSQL the job's
// attempted_at, which River's rescuer compares with RescueStuckJobsAfter to
// find the jobs of dead replicas. When the claim is lost — the job or the
// lease belongs to someone else now, or no renewal succeeded for half of
// rescueAfter, after which another replica may take over — it cancels the
// returned context with errClaimLost. stop ends the renewals and returns
// that error if it happened.
func (w *issueWorker) keepAlive(ctx context.Context, j *river.Job[IssueArgs], certName string) (context.Context, func() error) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(w.rescueAfter / 4)
		defer ticker.Stop()
		lastRenewed := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			err := w.renew(ctx, j, certName)
			switch {
			case err == nil:
				lastRenewed = time.Now()
			case errors.Is(err, errClaimLost):
				cancel(err)
				return
			case ctx.Err() != nil:
				return
			default:
				w.logger.WarnContext(ctx, "renewing the claim on a running job", "job_id", j.ID,
					"operation_id", j.Args.OperationID, "error", err)
				if silent := time.Since(lastRenewed); silent > w.rescueAfter/2 {
					cancel(fmt.Errorf("%w: %w: no renewal for %s: %w", errClaimLost, errClaimLapsed, silent.Round(time.Millisecond), err))
					return
				}
			}
		}
	})
	return ctx, func() error {
		close(done)
		wg.Wait()
		defer cancel(nil)
		if cause := context.Cause(ctx); errors.Is(cause, errClaimLost) {
			return cause
		}
		return nil
	}
}

// renew extends the job's claim once; errClaimLost means it is no longer
// this worker's.
func (w *issueWorker) renew(ctx context.Context, j *river.Job[IssueArgs], certName string) error {
	ctx, cancel := context.WithTimeout(ctx, w.rescueAfter/4)
	defer cancel()
	if w.renewJob {
		res, err := w.store.DB().ExecContext(ctx, `UPDATE river_job SET attempted_at = now()
			WHERE id = $1 AND state = 'running' AND attempt = $2`, j.ID, j.Attempt)
		if err != nil {
			return fmt.Errorf("renewing job %d: %w", j.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Not running this attempt. When the row still holds this
			// attempt, another worker's end was recorded on it (River
			// records a worker's result on the job's row whatever attempt
			// that worker ran): the operation is still this attempt's.
			var attempt int
			err := w.store.DB().QueryRowContext(ctx, `SELECT attempt FROM river_job WHERE id = $1`, j.ID).Scan(&attempt)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("%w (job %d no longer exists)", errClaimLost, j.ID)
			case err != nil:
				return fmt.Errorf("reading job %d: %w", j.ID, err)
			case attempt != j.Attempt:
				return fmt.Errorf("%w (job %d runs attempt %d, not %d)", errClaimLost, j.ID, attempt, j.Attempt)
			}
		}
	}
	err := w.store.RenewLease(ctx, certName, j.Args.OperationID, w.leaseTTL())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w (the lease of certificate %s belongs to another operation)", errClaimLost, certName)
	}
	return err
}
