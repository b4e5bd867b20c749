package job

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/certkeeper/certkeeper/internal/store"
)

// HousekeepingArgs is the periodic clean-up job. River's elected leader
// schedules it, so it runs once per interval however many replicas there
// are; any replica may work it.
type HousekeepingArgs struct{}

// Kind implements river.JobArgs.
func (HousekeepingArgs) Kind() string { return "certkeeper_housekeeping" }

// housekeepingTimeout bounds one clean-up.
const housekeepingTimeout = 5 * time.Minute

func housekeepingJob(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return HousekeepingArgs{}, nil },
		&river.PeriodicJobOpts{ID: "housekeeping", RunOnStart: true})
}

// housekeepingWorker prunes finished operations older than retention and
// expired certificate leases. River's own cleaner, also run by the leader,
// removes finished jobs after Housekeeping.JobRetention.
type housekeepingWorker struct {
	river.WorkerDefaults[HousekeepingArgs]
	store     *store.Store
	retention time.Duration
	logger    *slog.Logger
}

// Timeout implements river.Worker.
func (w *housekeepingWorker) Timeout(*river.Job[HousekeepingArgs]) time.Duration {
	return housekeepingTimeout
}

func (w *housekeepingWorker) Work(ctx context.Context, j *river.Job[HousekeepingArgs]) error {
	before := time.Now().Add(-w.retention)
	p, err := w.store.Prune(ctx, before)
	if err != nil {
		return err
	}
	w.logger.InfoContext(ctx, "housekeeping done", "job_id", j.ID, "operations_pruned", p.Operations,
		"leases_pruned", p.Leases, "pruned_before", before.UTC().Format(time.RFC3339))
	return nil
}
