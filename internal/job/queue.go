// Package job holds the durable job queue (River, on the same database as
// everything else): its setup for SQLite and PostgreSQL, the transactional
// enqueue of an operation with its job, and the worker that carries an
// issuance or renewal through the ACME flow.
package job

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
)

// IssueArgs is the job that carries one issue or renew operation.
type IssueArgs struct {
	OperationID string `json:"operationId"`
}

// Kind implements river.JobArgs.
func (IssueArgs) Kind() string { return "certkeeper_issue" }

// Options configures a Queue.
type Options struct {
	Store *store.Store
	// Runner does the work of each operation.
	Runner *Runner
	// Workers is how many operations run at once.
	Workers int
	// Timeout bounds one attempt of an operation.
	Timeout time.Duration
	// RescueAfter is how long a running job's replica may go silent before
	// another replica takes the job over. A live replica renews its running
	// jobs every quarter of it (PostgreSQL only: with SQLite there is one
	// process, and jobs it left running are taken over at start).
	RescueAfter time.Duration
	// Issue 5: more workers, the queues they run in (name to the number of
	// jobs of it that run at once) and periodic jobs, which River runs on
	// the elected leader only.
	Register     func(*river.Workers)
	Queues       map[string]int
	PeriodicJobs []*river.PeriodicJob
	// Housekeeping is the periodic clean-up the elected leader schedules.
	Housekeeping Housekeeping
	Logger       *slog.Logger
}

// Housekeeping configures the periodic clean-up.
type Housekeeping struct {
	// Interval is how often it runs.
	Interval time.Duration
	// OperationRetention is how long finished operations are kept.
	OperationRetention time.Duration
	// JobRetention is how long River keeps finished jobs.
	JobRetention time.Duration
}

// Queue is the durable job queue. It is safe for concurrent use.
type Queue struct {
	client *river.Client[*sql.Tx]
	store  *store.Store
	logger *slog.Logger
	// stopWork cancels the running operations at the end of Stop's grace
	// period.
	stopWork context.CancelFunc
}

// noRescue is River's rescue delay with SQLite: one process works every job,
// so a running job is never abandoned while the process lives, and the jobs
// of a dead process are released at the next start.
const noRescue = 100 * 365 * 24 * time.Hour

// New migrates River's schema and builds the queue; Start runs it.
func New(ctx context.Context, opts Options) (*Queue, error) {
	id := replicaID()
	logger := opts.Logger.With("component", "job", "replica_id", id)
	driver := newDriver(opts.Store)
	if _, err := migrate(ctx, opts.Store, driver, logger); err != nil {
		return nil, err
	}
	rescueAfter := opts.RescueAfter
	if opts.Store.Dialect() == store.SQLite {
		// SQLite has one process by construction: a job still marked running
		// was left by a process that died. Hand it back at once instead of
		// waiting for the rescuer.
		if err := releaseOrphans(ctx, opts.Store.DB(), logger); err != nil {
			return nil, err
		}
		rescueAfter = noRescue
	}

	// An insert in this process triggers a fetch at once, but inside the
	// enqueueing transaction: SQLite's single connection makes that fetch
	// wait for the commit, PostgreSQL's does not and misses the job, which
	// the next poll then picks up.
	pollInterval := 250 * time.Millisecond
	if opts.Store.Dialect() == store.Postgres {
		pollInterval = 100 * time.Millisecond
	}
	hk := opts.Housekeeping
	stopping, stopWork := context.WithCancel(context.Background())
	workers := river.NewWorkers()
	river.AddWorker(workers, &issueWorker{
		runner: opts.Runner, store: opts.Store, timeout: opts.Timeout, rescueAfter: opts.RescueAfter,
		renewJob: opts.Store.Dialect() == store.Postgres, stopping: stopping, logger: logger,
	})
	river.AddWorker(workers, &deliverWorker{runner: opts.Runner})
	river.AddWorker(workers, &housekeepingWorker{store: opts.Store, retention: hk.OperationRetention, logger: logger})
	if opts.Register != nil {
		opts.Register(workers)
	}
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}}
	for name, n := range opts.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: n}
	}
	client, err := river.NewClient(driver, &river.Config{
		ID:      id,
		Queues:  queues,
		Workers: workers,
		// Each worker bounds its own jobs (Timeout); River's bound would tie
		// RescueStuckJobsAfter to the longest issuance.
		JobTimeout:           -1,
		RescueStuckJobsAfter: rescueAfter,
		// River warns about a job running past its Timeout (for issuances,
		// rescueAfter: see issueWorker.Timeout) plus this; an issuance may
		// run for opts.Timeout.
		JobStuckThreshold:           opts.Timeout,
		CompletedJobRetentionPeriod: hk.JobRetention,
		CancelledJobRetentionPeriod: hk.JobRetention,
		DiscardedJobRetentionPeriod: hk.JobRetention,
		PeriodicJobs:                append([]*river.PeriodicJob{housekeepingJob(hk.Interval)}, opts.PeriodicJobs...),
		FetchCooldown:               20 * time.Millisecond,
		FetchPollInterval:           pollInterval,
		MaxAttempts:                 25,
		Logger:                      quietLogger(logger),
	})
	if err != nil {
		stopWork()
		return nil, fmt.Errorf("creating job queue: %w", err)
	}
	if opts.Runner.deliveries != nil {
		opts.Runner.deliveries.client = client
	}
	return &Queue{client: client, store: opts.Store, logger: logger, stopWork: stopWork}, nil
}

// replicaID names this process in River's tables: the host name (a pod's
// name in Kubernetes) and a random suffix, unique per start.
func replicaID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, host)
	if host == "" {
		host = "certkeeper"
	}
	if len(host) > 60 {
		host = host[:60]
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// ReplicaID is this process's name in the job queue: River's client id,
// which River's tables show as the leader and as who worked a job.
func (q *Queue) ReplicaID() string { return q.client.ID() }

func newDriver(st *store.Store) riverdriver.Driver[*sql.Tx] {
	if st.Dialect() == store.SQLite {
		return riversqlite.New(st.DB())
	}
	return riverdatabasesql.New(st.DB())
}

// Migrate brings the job queue's schema (River's tables) up to date and
// returns the versions it applied. It runs under the store's migration
// lock, so replicas starting together on an empty database migrate once.
func Migrate(ctx context.Context, st *store.Store, logger *slog.Logger) ([]int, error) {
	return migrate(ctx, st, newDriver(st), logger.With("component", "job"))
}

func migrate(ctx context.Context, st *store.Store, driver riverdriver.Driver[*sql.Tx], logger *slog.Logger) ([]int, error) {
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quietLogger(logger)})
	if err != nil {
		return nil, fmt.Errorf("preparing job queue migrations: %w", err)
	}
	var applied []int
	err = st.WithMigrationLock(ctx, func(ctx context.Context) error {
		res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
		if err != nil {
			return fmt.Errorf("migrating job queue schema: %w", err)
		}
		for _, v := range res.Versions {
			applied = append(applied, v.Version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(applied) > 0 {
		logger.InfoContext(ctx, "applied job queue migrations", "versions", applied)
	}
	return applied, nil
}

// quietLogger passes River's own logging through at warning level and up.
func quietLogger(l *slog.Logger) *slog.Logger {
	return slog.New(levelFloor{Handler: l.Handler(), min: slog.LevelWarn})
}

type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func releaseOrphans(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	res, err := db.ExecContext(ctx, `UPDATE river_job SET state = 'available', attempted_by = NULL
		WHERE state = 'running'`)
	if err != nil {
		return fmt.Errorf("releasing jobs left running by a previous process: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		logger.InfoContext(ctx, "resuming jobs left running by a previous process", "jobs", n)
	}
	return nil
}

// Start starts working jobs. It returns once the queue runs; Stop ends it.
func (q *Queue) Start(ctx context.Context) error {
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("starting job queue: %w", err)
	}
	return nil
}

// Stop stops taking jobs and waits for running ones until ctx is done; then
// it cancels them, and they go back to the queue at once, for another
// replica or the next start (without counting as a failed attempt).
func (q *Queue) Stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if err == nil {
		return nil
	}
	q.logger.WarnContext(ctx, "jobs still running at the end of the grace period; cancelling them")
	q.stopWork()
	cancelCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := q.client.StopAndCancel(cancelCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopping job queue: %w", err)
	}
	return nil
}

// Enqueue records a new operation for spec and its job in one transaction,
// and returns the operation id. The caller auth.FromContext finds in ctx is
// recorded as the operation's creator.
func (q *Queue) Enqueue(ctx context.Context, kind operation.Kind, spec certificate.Spec) (string, error) {
	now := time.Now().UTC()
	op := operation.Operation{
		ID: operation.NewID(), Kind: kind, CertificateName: spec.Name, Status: operation.StatusPending,
		CreatedAt: now, UpdatedAt: now,
	}
	if p, ok := auth.FromContext(ctx); ok {
		op.CreatedBy, op.CreatedByName = p.Actor(), p.Name
	}
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := q.store.InsertOperation(ctx, tx, op, spec); err != nil {
			return err
		}
		if _, err := q.client.InsertTx(ctx, tx, IssueArgs{OperationID: op.ID}, nil); err != nil {
			return fmt.Errorf("enqueueing operation %s: %w", op.ID, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	q.logger.InfoContext(ctx, "operation enqueued", "operation_id", op.ID, "kind", kind, "certificate", spec.Name)
	return op.ID, nil
}

// EnqueueClaimed is Enqueue with claim run in the same transaction, given
// the new operation's id: the operation and its job are kept only when claim
// returns nil, and claim's error is returned as it is.
func (q *Queue) EnqueueClaimed(ctx context.Context, kind operation.Kind, spec certificate.Spec,
	claim func(tx *sql.Tx, opID string) error,
) (string, error) {
	now := time.Now().UTC()
	op := operation.Operation{
		ID: operation.NewID(), Kind: kind, CertificateName: spec.Name, Status: operation.StatusPending,
		CreatedAt: now, UpdatedAt: now,
	}
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := q.store.InsertOperation(ctx, tx, op, spec); err != nil {
			return err
		}
		if err := claim(tx, op.ID); err != nil {
			return err
		}
		if _, err := q.client.InsertTx(ctx, tx, IssueArgs{OperationID: op.ID}, nil); err != nil {
			return fmt.Errorf("enqueueing operation %s: %w", op.ID, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	q.logger.InfoContext(ctx, "operation enqueued", "operation_id", op.ID, "kind", kind, "certificate", spec.Name)
	return op.ID, nil
}

// InsertManyTx inserts jobs in tx; none is a no-op.
func (q *Queue) InsertManyTx(ctx context.Context, tx *sql.Tx, jobs []river.InsertManyParams) error {
	if len(jobs) == 0 {
		return nil
	}
	if _, err := q.client.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueueing jobs: %w", err)
	}
	return nil
}

// InsertMany inserts jobs in a transaction of their own; none is a no-op.
func (q *Queue) InsertMany(ctx context.Context, jobs []river.InsertManyParams) error {
	if len(jobs) == 0 {
		return nil
	}
	return q.store.Tx(ctx, func(tx *sql.Tx) error { return q.InsertManyTx(ctx, tx, jobs) })
}

// Ping reports whether the queue's database answers.
func (q *Queue) Ping(ctx context.Context) error { return q.store.Ping(ctx) }
