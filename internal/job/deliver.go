package job

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// DeliverArgs is the job that retries one delivery.
type DeliverArgs struct {
	OperationID string `json:"operationId"`
	Destination string `json:"destination"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "certkeeper_deliver" }

// VersionReader reads stored versions with their private keys.
type VersionReader interface {
	// ByID returns the version with its key, or vault.ErrNotFound.
	ByID(ctx context.Context, id string) (vault.Version, error)
}

// DeliveryOptions configures deliveries to destinations.
type DeliveryOptions struct {
	// Destinations are the configured destinations by name.
	Destinations map[string]vault.Destination
	// Defaults are used for a certificate whose spec names none (nil).
	Defaults []string
	// Timeout bounds one attempt; RetryMin and RetryMax the wait before the
	// next, doubling from one to the other; MaxAttempts the attempts.
	Timeout            time.Duration
	RetryMin, RetryMax time.Duration
	MaxAttempts        int
}

// Deliveries delivers stored versions to destinations: a first attempt at
// each as the operation's last step, then retries as jobs of their own, with
// backoff, until delivered, superseded by a newer version, or out of
// attempts. It is safe for concurrent use.
type Deliveries struct {
	opts     DeliveryOptions
	store    *store.Store
	versions VersionReader
	logger   *slog.Logger
	client   *river.Client[*sql.Tx] // set by New
}

// NewDeliveries returns the delivery step; pass it to Runner.WithDeliveries.
func NewDeliveries(st *store.Store, versions VersionReader, opts DeliveryOptions, logger *slog.Logger) *Deliveries {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 30 * time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = opts.RetryMin
	}
	if opts.MaxAttempts < 1 {
		opts.MaxAttempts = 1
	}
	return &Deliveries{opts: opts, store: st, versions: versions, logger: logger.With("component", "delivery")}
}

// WithDeliveries makes the runner deliver every stored version to its
// certificate's destinations. It returns r.
func (r *Runner) WithDeliveries(d *Deliveries) *Runner {
	r.deliveries = d
	return r
}

// Destinations resolves the destinations of spec: its own list, or the
// defaults when it names none.
func (d *Deliveries) Destinations(spec certificate.Spec) []string {
	if spec.Destinations != nil {
		return spec.Destinations
	}
	return d.opts.Defaults
}

// deliverAndSucceed is the step after storing: it records a delivery per
// destination, makes the first attempt at each, and marks the operation
// succeeded. Failed attempts are retried by jobs of their own; a delivery
// never fails the operation, whose version is safe in the built-in store.
func (r *Runner) deliverAndSucceed(ctx context.Context, t *tracker, id string, spec certificate.Spec) error {
	d := r.deliveries
	if d == nil {
		return t.succeed(ctx, id)
	}
	dests := d.Destinations(spec)
	if len(dests) == 0 {
		return t.succeed(ctx, id)
	}
	t.enter(ctx, operation.StepDelivering)
	if err := d.store.EnsureDeliveries(ctx, id, spec.Name, id, dests); err != nil {
		return err
	}
	all, err := d.store.Deliveries(ctx, id)
	if err != nil {
		return err
	}
	var failed []string
	for _, dl := range all {
		if dl.Status != operation.DeliveryPending || dl.Attempts > 0 {
			continue // attempted before a crash; its own job carries on
		}
		dl, err := d.attempt(ctx, dl)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("operation %s interrupted while delivering: %w", id, ctx.Err())
			}
			return err
		}
		if dl.Status != operation.DeliveryDelivered && dl.Status != operation.DeliverySuperseded {
			failed = append(failed, dl.Destination+": "+dl.Error)
		}
	}
	if len(failed) > 0 {
		t.mu.Lock()
		if n := len(t.op.Steps); n > 0 && t.op.Steps[n-1].Name == operation.StepDelivering {
			t.op.Steps[n-1].Error = strings.Join(failed, "; ")
		}
		t.mu.Unlock()
	}
	return t.succeed(ctx, id)
}

// leaseMargin is added to the attempt timeout for the destination lease.
const leaseMargin = 30 * time.Second

// busyRetry is when a delivery that found another one writing to the same
// destination tries again.
const busyRetry = 5 * time.Second

// attempt makes one attempt at delivery dl and records its outcome,
// enqueueing the next attempt when one is due. It returns an error only
// when the outcome could not be recorded or the process is stopping.
func (d *Deliveries) attempt(ctx context.Context, dl operation.Delivery) (operation.Delivery, error) {
	logger := d.logger.With("operation_id", dl.OperationID, "certificate", dl.CertificateName,
		"destination", dl.Destination)
	owner := operation.NewID()
	got, err := d.store.AcquireDeliveryLease(ctx, dl.CertificateName, dl.Destination, owner,
		time.Now().Add(d.opts.Timeout+leaseMargin))
	if err != nil {
		return dl, err
	}
	if !got {
		logger.DebugContext(ctx, "another delivery is writing to the destination; trying again shortly")
		return dl, d.schedule(ctx, dl, time.Now().Add(busyRetry))
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		defer cancel()
		if err := d.store.ReleaseDeliveryLease(rctx, dl.CertificateName, dl.Destination, owner); err != nil {
			logger.WarnContext(ctx, "releasing the delivery lease", "error", err)
		}
	}()

	latest, err := d.store.LatestVersion(ctx, dl.CertificateName)
	if err != nil {
		return dl, err
	}
	if latest.ID != dl.VersionID {
		dl.Status, dl.Error = operation.DeliverySuperseded, "a newer version of the certificate exists ("+latest.ID+")"
		return dl, d.record(ctx, dl, nil)
	}
	dest, ok := d.opts.Destinations[dl.Destination]
	if !ok {
		dl.Attempts++
		dl.Status, dl.Error = operation.DeliveryFailed, fmt.Sprintf("the destination %q is not configured", dl.Destination)
		return dl, d.record(ctx, dl, nil)
	}
	v, err := d.versions.ByID(ctx, dl.VersionID)
	if err != nil {
		return dl, fmt.Errorf("reading version %s to deliver: %w", dl.VersionID, err)
	}
	actx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	receipt, derr := dest.Deliver(actx, v)
	cancel()
	if derr != nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return dl, fmt.Errorf("delivering to %s interrupted: %w", dl.Destination, ctx.Err())
	}
	dl.Attempts++
	dl.Receipt, _ = json.Marshal(receipt)
	now := time.Now().UTC()
	switch {
	case derr == nil:
		dl.Status, dl.Error, dl.DeliveredAt, dl.NextAttemptAt = operation.DeliveryDelivered, "", now, time.Time{}
		logger.InfoContext(ctx, "certificate delivered", "version", dl.VersionID, "changed", receipt.Changed,
			"location", receipt.Location, "attempt", dl.Attempts)
	case errors.Is(derr, vault.ErrSuperseded):
		dl.Status, dl.Error = operation.DeliverySuperseded, derr.Error()
	case dl.Attempts >= d.opts.MaxAttempts:
		dl.Status, dl.Error, dl.NextAttemptAt = operation.DeliveryFailed, derr.Error(), time.Time{}
		logger.ErrorContext(ctx, "delivery failed; no attempts left", "attempts", dl.Attempts, "error", derr)
	default:
		dl.Status, dl.Error = operation.DeliveryRetrying, derr.Error()
		dl.NextAttemptAt = now.Add(d.backoff(dl.Attempts))
		logger.WarnContext(ctx, "delivery failed; will try again", "attempt", dl.Attempts,
			"next_attempt_at", dl.NextAttemptAt, "error", derr)
	}
	var next *time.Time
	if dl.Status == operation.DeliveryRetrying {
		next = &dl.NextAttemptAt
	}
	return dl, d.record(ctx, dl, next)
}

// backoff is the wait after the given number of failed attempts: RetryMin
// doubled per earlier failure up to RetryMax, less up to a tenth at random.
func (d *Deliveries) backoff(attempts int) time.Duration {
	wait := d.opts.RetryMin
	for i := 1; i < attempts && wait < d.opts.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, d.opts.RetryMax)
	return wait - time.Duration(rand.Int64N(int64(wait)/10+1))
}

// record writes dl and, when next is set, enqueues the attempt due then, in
// one transaction.
func (d *Deliveries) record(ctx context.Context, dl operation.Delivery, next *time.Time) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return d.store.Tx(wctx, func(tx *sql.Tx) error {
		if err := d.store.RecordDelivery(wctx, tx, dl); err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		return d.insert(wctx, tx, dl, *next)
	})
}

// schedule enqueues another attempt at dl without recording an outcome.
func (d *Deliveries) schedule(ctx context.Context, dl operation.Delivery, at time.Time) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return d.store.Tx(wctx, func(tx *sql.Tx) error { return d.insert(wctx, tx, dl, at) })
}

func (d *Deliveries) insert(ctx context.Context, tx *sql.Tx, dl operation.Delivery, at time.Time) error {
	if d.client == nil {
		return errors.New("the delivery step is not attached to a job queue")
	}
	if _, err := d.client.InsertTx(ctx, tx, DeliverArgs{OperationID: dl.OperationID, Destination: dl.Destination},
		&river.InsertOpts{ScheduledAt: at}); err != nil {
		return fmt.Errorf("enqueueing the next delivery of %s to %s: %w", dl.CertificateName, dl.Destination, err)
	}
	return nil
}

// deliverWorker works DeliverArgs jobs.
type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	runner *Runner
}

func (w *deliverWorker) Work(ctx context.Context, j *river.Job[DeliverArgs]) error {
	d := w.runner.deliveries
	if d == nil {
		return nil // destinations were removed from the configuration
	}
	dl, err := d.store.Delivery(ctx, j.Args.OperationID, j.Args.Destination)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if dl.Status.Done() {
		return nil
	}
	_, err = d.attempt(ctx, dl)
	return err
}

// Unknown returns the names in list that are not configured destinations.
func (d *Deliveries) Unknown(list []string) []string {
	var out []string
	for _, n := range list {
		if _, ok := d.opts.Destinations[n]; !ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
