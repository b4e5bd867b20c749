package renewal

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/store"
)

// Advisor tells when the CA suggests renewing a certificate.
type Advisor interface {
	// RenewalInfo returns the suggested window for leaf of the CA that
	// issued it (its configured name and directory URL), or
	// issuer.ErrNoRenewalInfo when the CA offers none.
	RenewalInfo(ctx context.Context, caName, directoryURL string, leaf *x509.Certificate) (issuer.RenewalInfo, error)
}

// Starter starts renewals.
type Starter interface {
	// StartRenewal starts renewing the named certificate with its stored
	// settings, unless a renewal of it is in flight already, and returns the
	// operation that renews it and whether it was started now.
	StartRenewal(ctx context.Context, name string) (opID string, started bool, err error)
}

// Notifier is told that a certificate is close to expiry and not renewed.
type Notifier interface {
	Expiring(ctx context.Context, v store.Version) error
}

// Options configure a Scheduler.
type Options struct {
	Store    *store.Store
	Advisor  Advisor
	Starter  Starter
	Notifier Notifier
	Policy   Policy
	// Concurrency bounds the renewals in flight; at least 1.
	Concurrency int
	// CheckInterval is how often Scan runs; a certificate waiting for a
	// renewal slot is looked at again after it.
	CheckInterval time.Duration
	// ExpiringWithin is how close to expiry the Notifier is told.
	ExpiringWithin time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Scheduler decides, for each certificate the database says is due, whether
// to renew it now, and when to look at it again. It is safe for concurrent
// use, also by several processes on one database: a schedule changed by
// another scan since it was read is skipped, and StartRenewal runs one
// renewal per certificate at a time.
type Scheduler struct {
	opts   Options
	logger *slog.Logger
}

// NewScheduler returns a Scheduler.
func NewScheduler(opts Options) *Scheduler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 5 * time.Minute
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{opts: opts, logger: logger.With("component", "renewal")}
}

// Result is what one Scan did.
type Result struct {
	// Checked is how many due certificates were looked at; Started how many
	// renewals were started; Waiting how many due renewals wait for a slot.
	Checked, Started, Waiting int
}

// batchSize is how many due schedules one query reads; maxBatches bounds
// the queries of one Scan.
const (
	batchSize  = 500
	maxBatches = 20
)

// inFlightRecheck is when a certificate whose renewal runs is looked at
// again, should the end of the renewal not reach its schedule.
const inFlightRecheck = time.Hour

// Scan looks at every certificate whose next check is due and renews those
// whose moment came, at most Concurrency at once.
func (s *Scheduler) Scan(ctx context.Context) (Result, error) {
	var res Result
	inFlight, err := s.opts.Store.CountRenewing(ctx)
	if err != nil {
		return res, err
	}
	slots := s.opts.Concurrency - inFlight
	for range maxBatches {
		now := s.opts.Now().UTC()
		due, err := s.opts.Store.DueRenewals(ctx, now, batchSize)
		if err != nil {
			return res, err
		}
		for _, r := range due {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if err := s.check(ctx, r, &slots, &res); err != nil {
				s.logger.WarnContext(ctx, "checking renewal", "certificate", r.CertificateName, "error", err)
			}
		}
		if len(due) < batchSize {
			break
		}
	}
	if res.Checked > 0 {
		s.logger.DebugContext(ctx, "renewal scan", "checked", res.Checked, "started", res.Started, "waiting", res.Waiting)
	}
	return res, nil
}

// check decides about one due schedule.
func (s *Scheduler) check(ctx context.Context, r store.Renewal, slots *int, res *Result) error {
	now := s.opts.Now().UTC()
	res.Checked++
	r.LastCheckedAt = now
	if r.OperationID != "" {
		op, err := s.opts.Store.Operation(ctx, r.OperationID)
		if err == nil && !op.Status.Done() {
			r.Status, r.NextCheckAt = StatusRenewing, now.Add(inFlightRecheck)
			_, err := s.save(ctx, r)
			return err
		}
	}
	v, err := s.opts.Store.LatestVersion(ctx, r.CertificateName)
	if errors.Is(err, store.ErrNotFound) {
		r.NextCheckAt = now.Add(MaxRetryAfter)
		_, err := s.save(ctx, r)
		return err
	}
	if err != nil {
		return err
	}
	if !v.RevokedAt.IsZero() {
		r.VersionID, r.Status, r.RenewAt = v.ID, StatusRevoked, time.Time{}
		r.Message = "Revoked " + v.RevokedAt.Format(time.RFC3339) + "; not renewed automatically."
		r.NextCheckAt = now.Add(MaxRetryAfter)
		_, err := s.save(ctx, r)
		return err
	}
	if r.VersionID != v.ID {
		r.VersionID, r.Source, r.WindowStart, r.WindowEnd, r.ExplanationURL, r.ARINextAt = v.ID, "", time.Time{}, time.Time{}, "", time.Time{}
	}
	ariNote := s.askCA(ctx, &r, v, now)

	renewAt := s.opts.Policy.Lifetime(v.NotBefore, v.NotAfter, v.ID)
	if r.Source == SourceARI {
		renewAt = Latest(InWindow(r.WindowStart, r.WindowEnd, v.ID), v.NotBefore, v.NotAfter)
	} else {
		r.Source = SourceLifetime
	}
	r.RenewAt = renewAt

	var expiringAt time.Time
	notify := false
	if r.ExpiringNotified != v.ID {
		expiringAt = ExpiringAt(renewAt, v.NotAfter, s.opts.ExpiringWithin)
		if !now.Before(expiringAt) {
			notify, r.ExpiringNotified, expiringAt = true, v.ID, time.Time{}
		}
	}

	attemptAt := renewAt
	if r.RetryAt.After(attemptAt) && r.Failures > 0 {
		attemptAt = r.RetryAt
	}
	start := false
	switch {
	case now.Before(attemptAt):
		r.NextCheckAt = Earliest(attemptAt, r.ARINextAt, expiringAt)
		if r.Failures > 0 {
			r.Status = FailedStatus(r.Failures)
		} else {
			r.Status, r.Message = StatusScheduled, s.describe(r, ariNote)
		}
	case *slots <= 0:
		r.Status, r.NextCheckAt = StatusWaiting, now.Add(s.opts.CheckInterval)
		r.Message = fmt.Sprintf("Due since %s; waiting for one of %d renewal slots.", attemptAt.Format(time.RFC3339), s.opts.Concurrency)
		res.Waiting++
	default:
		start = true
		r.NextCheckAt = now.Add(inFlightRecheck)
	}
	if saved, err := s.save(ctx, r); !saved {
		return err
	}
	if notify && s.opts.Notifier != nil {
		if err := s.opts.Notifier.Expiring(ctx, v); err != nil {
			s.logger.WarnContext(ctx, "sending the expiring event", "certificate", v.Name, "error", err)
		}
	}
	if !start {
		return nil
	}
	opID, started, err := s.opts.Starter.StartRenewal(ctx, r.CertificateName)
	if err != nil {
		return fmt.Errorf("starting the renewal of %s: %w", r.CertificateName, err)
	}
	if started {
		*slots--
		res.Started++
		s.logger.InfoContext(ctx, "renewal started", "certificate", r.CertificateName, "operation_id", opID,
			"source", r.Source, "renew_at", r.RenewAt, "not_after", v.NotAfter)
	}
	return nil
}

// askCA refreshes the CA's window when it is time to ask; it returns a note
// for the message when the CA could not be asked.
func (s *Scheduler) askCA(ctx context.Context, r *store.Renewal, v store.Version, now time.Time) string {
	if !r.ARINextAt.IsZero() && now.Before(r.ARINextAt) {
		return ""
	}
	leaf, err := parseLeaf(v.CertPEM)
	if err == nil {
		var info issuer.RenewalInfo
		info, err = s.opts.Advisor.RenewalInfo(ctx, v.CAName, v.ACMEEndpoint, leaf)
		if err == nil {
			r.Source, r.WindowStart, r.WindowEnd, r.ExplanationURL = SourceARI, info.Start, info.End, info.ExplanationURL
			r.ARINextAt = NextARICheck(now, info.RetryAfter)
			return ""
		}
	}
	if errors.Is(err, issuer.ErrNoRenewalInfo) {
		r.Source, r.WindowStart, r.WindowEnd, r.ExplanationURL = SourceLifetime, time.Time{}, time.Time{}, ""
		r.ARINextAt = now.Add(MaxRetryAfter)
		return ""
	}
	// Keep what the CA said last time, if anything, and ask again soon.
	s.logger.WarnContext(ctx, "asking the CA for renewal information", "certificate", v.Name, "error", err)
	r.ARINextAt = now.Add(ARIErrorRetry)
	return " The CA's renewal information could not be read: " + err.Error()
}

// describe is the message of a scheduled renewal.
func (s *Scheduler) describe(r store.Renewal, note string) string {
	at := r.RenewAt.Format(time.RFC3339)
	if r.Source == SourceARI {
		msg := fmt.Sprintf("Renews at %s, inside the CA's suggested window %s to %s.", at,
			r.WindowStart.Format(time.RFC3339), r.WindowEnd.Format(time.RFC3339))
		if r.ExplanationURL != "" {
			msg += " The CA explains: " + r.ExplanationURL
		}
		return msg + note
	}
	return fmt.Sprintf("Renews at %s (renewBeforeExpiry %s).", at, s.policyText()) + note
}

func (s *Scheduler) policyText() string {
	if s.opts.Policy.Percent > 0 {
		return fmt.Sprintf("%d%% of the lifetime", s.opts.Policy.Percent)
	}
	days := s.opts.Policy.Days
	if days <= 0 {
		days = 30
	}
	return fmt.Sprintf("%d days, half the lifetime for certificates of 10 days or less", days)
}

// save writes r and reports whether it did; a schedule changed meanwhile
// (another scan, an operation that ended) is left to the next scan.
func (s *Scheduler) save(ctx context.Context, r store.Renewal) (bool, error) {
	_, err := s.opts.Store.SaveRenewal(ctx, r)
	if errors.Is(err, store.ErrConflict) {
		s.logger.DebugContext(ctx, "renewal schedule changed meanwhile; skipping", "certificate", r.CertificateName)
		return false, nil
	}
	return err == nil, err
}

func parseLeaf(certPEM string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return nil, errors.New("reading the stored certificate: no PEM block")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reading the stored certificate: %w", err)
	}
	return leaf, nil
}
