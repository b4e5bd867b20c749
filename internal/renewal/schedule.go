// Package renewal holds when a certificate is due for renewal and the
// scheduler that renews it: the CA's renewal information (ARI, RFC 9773)
// first, the certificate's lifetime otherwise, with jitter, bounded
// concurrency and a backoff after failures.
//
// The scheduling math is pure functions of the current time (schedule.go);
// the Scheduler (scheduler.go) applies it to the certificates the database
// says are due.
package renewal

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Bounds and defaults of the schedule.
const (
	// ShortLived is the longest lifetime for which the default is to renew
	// at half the lifetime rather than a number of days before expiry.
	ShortLived = 10 * 24 * time.Hour
	// MinRetryAfter and MaxRetryAfter clamp how long to wait before asking
	// the CA's renewal information again; DefaultRetryAfter is used when
	// the CA sent no Retry-After.
	MinRetryAfter     = time.Minute
	MaxRetryAfter     = 24 * time.Hour
	DefaultRetryAfter = 6 * time.Hour
	// ARIErrorRetry is how long to wait before asking again after the CA's
	// renewal information could not be read.
	ARIErrorRetry = time.Hour
	// FirstRetry is the wait after the first failed renewal; each further
	// failure doubles it up to MaxBackoff.
	FirstRetry = 5 * time.Minute
	MaxBackoff = 6 * time.Hour
	// AttentionAfter is how many consecutive failures flag a certificate as
	// needing attention.
	AttentionAfter = 3
	// maxSpread bounds the jitter of a lifetime-based renewal.
	maxSpread = 24 * time.Hour
)

// Statuses of a schedule, as GET /api/renewals shows them.
const (
	StatusPending        = "pending"        // not looked at yet
	StatusScheduled      = "scheduled"      // renewal planned at RenewAt
	StatusWaiting        = "waiting"        // due, waiting for a free renewal slot
	StatusRenewing       = "renewing"       // a renewal operation is running
	StatusFailed         = "failed"         // the last renewal failed; retried with backoff
	StatusNeedsAttention = "needsAttention" // renewals keep failing
	StatusRevoked        = "revoked"        // revoked here: not renewed automatically
)

// Sources of a planned renewal.
const (
	SourceARI      = "ari"
	SourceLifetime = "lifetime"
)

// Policy is when a certificate is renewed when the CA gives no renewal
// information. The zero value renews 30 days before expiry.
type Policy struct {
	// Days before expiry, Acmebot's meaning; used for certificates that
	// live longer than ShortLived. Zero means 30.
	Days int
	// Percent of the lifetime left, when set, replaces Days for every
	// certificate.
	Percent int
}

// Lifetime returns when a certificate valid from notBefore to notAfter is
// renewed without renewal information: Percent of its lifetime before
// expiry; else for a certificate of ShortLived or less, half its lifetime;
// else Days before expiry, but never earlier than half its lifetime (so a
// short certificate is not renewed as soon as it is issued). The moment is
// moved earlier by a jitter of up to a twentieth of the lifetime (at most a
// day), the same for the same seed (the version id), so that certificates
// issued together are not all renewed together and a restart does not move
// it.
func (p Policy) Lifetime(notBefore, notAfter time.Time, seed string) time.Time {
	lifetime := notAfter.Sub(notBefore)
	if lifetime <= 0 {
		return notAfter
	}
	var before time.Duration
	switch days := p.Days; {
	case p.Percent > 0:
		before = lifetime * time.Duration(p.Percent) / 100
	case lifetime <= ShortLived:
		before = lifetime / 2
	default:
		if days <= 0 {
			days = 30
		}
		before = min(time.Duration(days)*24*time.Hour, lifetime/2)
	}
	spread := min(lifetime/20, maxSpread)
	at := notAfter.Add(-before).Add(-time.Duration(fraction(seed, "lifetime") * float64(spread)))
	return at.Truncate(time.Microsecond) // the database's precision
}

// InWindow returns the moment to renew inside the CA's suggested window
// [start, end): uniformly random (RFC 9773 section 4.2) but the same for the
// same seed (the version id), so a restart does not re-roll it.
func InWindow(start, end time.Time, seed string) time.Time {
	if !end.After(start) {
		return start
	}
	at := start.Add(time.Duration(fraction(seed, "window") * float64(end.Sub(start)))).Truncate(time.Microsecond)
	if at.Before(start) { // the truncation to the database's microseconds
		return start
	}
	return at
}

// ExpiringAt is when a certificate that is still not renewed is reported as
// expiring: within the given time of its expiry, but never before half the
// time between its planned renewal and its expiry has passed, so that a
// short-lived certificate (whose whole life is within a week) is reported
// only when its renewal is overdue.
func ExpiringAt(renewAt, notAfter time.Time, within time.Duration) time.Time {
	at := notAfter.Add(-within)
	if grace := renewAt.Add(notAfter.Sub(renewAt) / 2); !renewAt.IsZero() && grace.After(at) {
		at = grace
	}
	return at
}

// Latest caps a renewal moment chosen from the CA's window: however the CA
// answers, a certificate is renewed by nine tenths of its lifetime.
func Latest(at, notBefore, notAfter time.Time) time.Time {
	limit := notAfter.Add(-notAfter.Sub(notBefore) / 10)
	if at.After(limit) {
		return limit
	}
	return at
}

// NextARICheck returns when to ask the CA's renewal information again after
// an answer with the given Retry-After: DefaultRetryAfter when it sent none,
// clamped to [MinRetryAfter, MaxRetryAfter].
func NextARICheck(now time.Time, retryAfter time.Duration) time.Time {
	if retryAfter <= 0 {
		retryAfter = DefaultRetryAfter
	}
	return now.Add(min(max(retryAfter, MinRetryAfter), MaxRetryAfter))
}

// Backoff is the wait before retrying after the given number of consecutive
// failed renewals: FirstRetry, doubling, at most MaxBackoff.
func Backoff(failures int) time.Duration {
	d := FirstRetry
	for i := 1; i < failures && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// FailedStatus is the status after the given number of consecutive failures.
func FailedStatus(failures int) string {
	if failures >= AttentionAfter {
		return StatusNeedsAttention
	}
	return StatusFailed
}

// Earliest returns the earliest of the non-zero times, or zero.
func Earliest(times ...time.Time) time.Time {
	var out time.Time
	for _, t := range times {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

// fraction maps seed and purpose to a number in [0, 1), uniformly and
// deterministically.
func fraction(seed, purpose string) float64 {
	sum := sha256.Sum256([]byte(purpose + "\x00" + seed))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}
