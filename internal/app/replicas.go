package app

import (
	"context"
	"sync"

	"github.com/certkeeper/certkeeper/internal/job"
)

// Several replicas (issue 10): what each one does at start besides serving.

// housekeeping turns the configuration into the job queue's.
func (a *App) housekeeping() job.Housekeeping {
	h := a.cfg.Housekeeping
	return job.Housekeeping{Interval: h.Interval, OperationRetention: h.OperationRetention, JobRetention: h.JobRetention}
}

// prepareAccount loads or registers the ACME account of every CA in the background, so
// that replicas starting together register one account (under the
// database's lock) before any issuance needs it. A failure is logged; the
// first issuance tries again. The returned function stops it and waits for
// it to end.
func (a *App) prepareAccount(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, ca := range a.cas.All() {
		wg.Go(func() {
			if err := ca.Prepare(ctx); err != nil && ctx.Err() == nil {
				a.logger.WarnContext(ctx, "could not prepare the ACME account; the first issuance tries again",
					"ca", ca.Name(), "acme_endpoint", ca.DirectoryURL(), "error", err)
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
