package renewal

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// Queue is the job queue scans run in: one at a time per process.
const Queue = "renewal"

// ScanArgs is the periodic job that runs one Scan.
type ScanArgs struct{}

// Kind implements river.JobArgs.
func (ScanArgs) Kind() string { return "certkeeper_renewal_scan" }

// InsertOpts implements river.JobArgsWithInsertOpts: scans run in their own
// queue and are not retried (the next one comes soon).
func (ScanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 1}
}

// Register adds the scan worker to workers.
func (s *Scheduler) Register(workers *river.Workers) {
	river.AddWorker(workers, &scanWorker{s: s})
}

// PeriodicJob is the scan every CheckInterval, the first one interval
// after start. River inserts periodic jobs on the elected leader only, so
// with several replicas one scan runs per interval.
func (s *Scheduler) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(s.opts.CheckInterval),
		func() (river.JobArgs, *river.InsertOpts) { return ScanArgs{}, nil },
		&river.PeriodicJobOpts{ID: "certkeeper_renewal_scan"})
}

var _ river.Worker[ScanArgs] = (*scanWorker)(nil)

type scanWorker struct {
	river.WorkerDefaults[ScanArgs]
	s *Scheduler
}

// Timeout bounds one scan.
func (w *scanWorker) Timeout(*river.Job[ScanArgs]) time.Duration { return 10 * time.Minute }

func (w *scanWorker) Work(ctx context.Context, j *river.Job[ScanArgs]) error {
	// A scan that waited longer than an interval (a slow previous scan,
	// a stopped process) is superseded by a newer one.
	if time.Since(j.ScheduledAt) > 2*w.s.opts.CheckInterval+time.Minute {
		return nil
	}
	_, err := w.s.Scan(ctx)
	return err
}
