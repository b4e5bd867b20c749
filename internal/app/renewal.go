package app

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/riverqueue/river"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/job"
	"github.com/certkeeper/certkeeper/internal/metrics"
	"github.com/certkeeper/certkeeper/internal/notify"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/renewal"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// This file wires issue 5: automatic renewal, webhooks, metrics and health.

// notifyWorkers is how many webhook deliveries run at once per process.
const notifyWorkers = 5

var (
	_ renewal.Starter   = (*App)(nil)
	_ renewal.Notifier  = (*App)(nil)
	_ api.RenewalLister = (*App)(nil)
)

// observability builds the metrics and the notifier; New calls it before
// the issuer so that the CA's HTTP client can be wrapped.
func (a *App) observability(cfg *config.Config) {
	a.metrics = metrics.New(a.store, a.logger)
	endpoints := make([]notify.Endpoint, len(cfg.Webhook))
	for i, w := range cfg.Webhook {
		endpoints[i] = notify.Endpoint{URL: w.URL, Events: w.Events, PayloadType: w.PayloadType}
	}
	a.notifier = notify.New(notify.Options{Endpoints: endpoints, Observer: a.metrics, Logger: a.logger})
	a.policy = renewal.Policy{Days: cfg.Renewal.RenewBeforeExpiry.Days, Percent: cfg.Renewal.RenewBeforeExpiry.Percent}
}

// RenewalInfo implements renewal.Advisor: it asks the CA that issued leaf.
func (a *App) RenewalInfo(ctx context.Context, caName, directoryURL string, leaf *x509.Certificate) (issuer.RenewalInfo, error) {
	ca, err := a.cas.ForVersion(caName, directoryURL)
	if err != nil {
		return issuer.RenewalInfo{}, err
	}
	return ca.RenewalInfo(ctx, leaf)
}

// renewalJobs builds the scheduler and adds it and the webhook deliveries to
// the job options.
func (a *App) renewalJobs(cfg *config.Config, opts *job.Options) {
	a.scheduler = renewal.NewScheduler(renewal.Options{
		Store: a.store, Advisor: a, Starter: a, Notifier: a, Policy: a.policy,
		Concurrency: cfg.Renewal.Concurrency, CheckInterval: cfg.Renewal.CheckInterval,
		ExpiringWithin: cfg.Renewal.ExpiringWithin, Logger: a.logger,
	})
	opts.Register = func(w *river.Workers) {
		a.notifier.Register(w)
		a.scheduler.Register(w)
	}
	opts.Queues = map[string]int{notify.Queue: notifyWorkers, renewal.Queue: 1}
	opts.PeriodicJobs = append(opts.PeriodicJobs, a.scheduler.PeriodicJob())
}

// operationEnded runs in the transaction that records the end of an
// operation: it starts the certificate's schedule again from a new version,
// or records a failed renewal with its backoff, and enqueues the webhooks.
func (a *App) operationEnded(ctx context.Context, tx *sql.Tx, f job.Finished) error {
	op, now := f.Op, time.Now().UTC()
	var ev notify.Event
	switch op.Status {
	case operation.StatusSucceeded:
		v, err := a.store.VersionByID(ctx, op.VersionID)
		if err != nil {
			return err
		}
		renewAt := a.policy.Lifetime(v.NotBefore, v.NotAfter, v.ID)
		if err := a.store.RenewalSucceeded(ctx, tx, op.CertificateName, op.ID, v.ID, renewAt, now,
			renewal.StatusScheduled, "Issued; the CA's renewal information is asked at the next check."); err != nil {
			return err
		}
		ev = notify.Event{Kind: config.EventCompleted, CertificateName: v.Name, DNSNames: v.Spec.DNSNames,
			ExpirationDate: v.NotAfter, ACMEEndpoint: hostOf(v.ACMEEndpoint), OperationID: op.ID}
	case operation.StatusFailed:
		if op.Kind == operation.KindRenew {
			n, err := a.store.RenewalFailed(ctx, tx, op.CertificateName, op.ID, func(failures int) (time.Time, string) {
				return now.Add(renewal.Backoff(failures)), renewal.FailedStatus(failures)
			}, "Renewal failed: "+op.Failure())
			if err != nil {
				return err
			}
			if n > 0 {
				a.logger.WarnContext(ctx, "renewal failed", "certificate", op.CertificateName, "failures", n,
					"next_attempt", now.Add(renewal.Backoff(n)))
			}
		}
		ev = notify.Event{Kind: config.EventFailed, CertificateName: op.CertificateName, DNSNames: f.Spec.DNSNames,
			OperationID: op.ID, Reason: op.Failure()}
	default:
		return nil
	}
	jobs := a.notifier.Jobs(ev)
	if v := f.Revoked; v != nil {
		jobs = append(jobs, a.notifier.Jobs(revokedEvent(*v))...)
	}
	return a.queue.InsertManyTx(ctx, tx, jobs)
}

// StartRenewal implements renewal.Starter: it renews the named certificate
// with its stored spec, unless a renewal of it is pending or running, in
// which case that one's id is returned. Manual and automatic renewals share
// this, so one certificate has one renewal at a time.
func (a *App) StartRenewal(ctx context.Context, name string) (string, bool, error) {
	for range 3 {
		prev := ""
		r, err := a.store.RenewalByName(ctx, nil, name)
		switch {
		case err == nil:
			prev = r.OperationID
		case !errors.Is(err, store.ErrNotFound):
			return "", false, err
		}
		if prev != "" {
			op, err := a.store.Operation(ctx, prev)
			if err == nil && !op.Status.Done() {
				return prev, false, nil
			}
		}
		v, err := a.store.LatestVersion(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return "", false, vault.ErrNotFound
		}
		if err != nil {
			return "", false, err
		}
		id, err := a.queue.EnqueueClaimed(ctx, operation.KindRenew, v.Spec, func(tx *sql.Tx, opID string) error {
			return a.store.ClaimRenewal(ctx, tx, name, prev, opID, renewal.StatusRenewing,
				time.Now().Add(a.cfg.Jobs.Timeout+time.Minute))
		})
		if errors.Is(err, store.ErrConflict) {
			continue // another renewal was started meanwhile: answer with it
		}
		if err != nil {
			return "", false, err
		}
		a.metrics.RenewalStarted()
		return id, true, nil
	}
	return "", false, fmt.Errorf("starting the renewal of %s: the schedule keeps changing", name)
}

// Expiring implements renewal.Notifier.
func (a *App) Expiring(ctx context.Context, v store.Version) error {
	a.logger.WarnContext(ctx, "certificate expires soon and is not renewed", "certificate", v.Name, "not_after", v.NotAfter)
	return a.queue.InsertMany(ctx, a.notifier.Jobs(notify.Event{Kind: config.EventExpiring, CertificateName: v.Name,
		DNSNames: v.Spec.DNSNames, ExpirationDate: v.NotAfter, ACMEEndpoint: hostOf(v.ACMEEndpoint)}))
}

// revoked sends the revoked event.
func (a *App) revoked(ctx context.Context, v vault.Version) {
	if err := a.queue.InsertMany(ctx, a.notifier.Jobs(revokedEvent(v))); err != nil {
		a.logger.WarnContext(ctx, "enqueueing the revoked event", "certificate", v.Name, "error", err)
	}
}

// revokedEvent is the revoked event of version v.
func revokedEvent(v vault.Version) notify.Event {
	return notify.Event{Kind: config.EventRevoked, CertificateName: v.Name, DNSNames: v.Spec.DNSNames,
		ExpirationDate: v.NotAfter, ACMEEndpoint: hostOf(v.ACMEEndpoint)}
}

// statusTexts are the Status shown for each StatusKind.
var statusTexts = map[string]string{
	renewal.StatusPending:        "Pending",
	renewal.StatusScheduled:      "Scheduled",
	renewal.StatusWaiting:        "Waiting",
	renewal.StatusRenewing:       "Renewing",
	renewal.StatusFailed:         "Failed",
	renewal.StatusNeedsAttention: "Needs attention",
	renewal.StatusRevoked:        "Revoked",
}

// Renewals implements api.RenewalLister.
func (a *App) Renewals(ctx context.Context) ([]api.Renewal, error) {
	rows, err := a.store.Renewals(ctx)
	if err != nil {
		return nil, err
	}
	expires := map[string]time.Time{}
	if gauges, err := a.store.CertificateGauges(ctx); err == nil {
		for _, g := range gauges {
			expires[g.Name] = g.NotAfter
		}
	}
	out := make([]api.Renewal, 0, len(rows))
	for _, r := range rows {
		kind := r.Status
		if r.LastCheckedAt.IsZero() && r.VersionID == "" && r.OperationID == "" {
			kind = renewal.StatusPending
		}
		text, ok := statusTexts[kind]
		if !ok {
			text = kind
		}
		out = append(out, api.Renewal{
			CertificateName: r.CertificateName, StatusKind: kind, Status: text, Message: r.Message,
			NextCheck: r.NextCheckAt, LastCheckedAt: r.LastCheckedAt, RenewAt: r.RenewAt, Source: r.Source,
			WindowStart: r.WindowStart, WindowEnd: r.WindowEnd, ExpiresOn: expires[r.CertificateName],
			Failures: r.Failures, OperationID: r.OperationID,
		})
	}
	return out, nil
}

// withHealth serves /metrics, /healthz and /readyz beside the API, without
// authentication (Prometheus and orchestrators call them).
func (a *App) withHealth(apiHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.ready(r.Context()); err != nil {
			a.logger.WarnContext(r.Context(), "not ready", "error", err)
			writeHealth(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeHealth(w, http.StatusOK, "ok")
	})
	mux.Handle("/", apiHandler)
	return mux
}

// ready reports whether the database answers and the job queue runs.
func (a *App) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		return errors.New("the database does not answer")
	}
	if !a.queueRunning.Load() {
		return errors.New("the job queue is not running")
	}
	if err := a.queue.Ping(ctx); err != nil {
		return errors.New("the job queue's database does not answer")
	}
	return nil
}

func writeHealth(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}

// hostOf is the host name of a directory URL, as Acmebot reports
// acmeEndpoint.
func hostOf(directoryURL string) string {
	u, err := url.Parse(directoryURL)
	if err != nil || u.Host == "" {
		return directoryURL
	}
	return u.Hostname()
}
