package api

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket per caller on the issuing routes (issue and
// renew): PerMinute requests a minute on average, up to Burst at once.
// PerMinute 0 turns it off. The buckets are per process: with several
// replicas each one limits on its own.
type RateLimit struct {
	PerMinute float64
	Burst     int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// limiter holds one bucket per caller. Full buckets are dropped now and
// then, so memory follows the callers active in the last minutes. Safe for
// concurrent use.
type limiter struct {
	cfg       RateLimit
	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// sweepEvery is how often idle buckets are dropped.
const sweepEvery = time.Minute

func newLimiter(cfg RateLimit) *limiter {
	if cfg.PerMinute <= 0 {
		return nil
	}
	if cfg.Burst < 1 {
		cfg.Burst = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &limiter{cfg: cfg, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token from caller's bucket; when there is none it returns
// false and how long until there is one.
func (l *limiter) allow(caller string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	if now.Sub(l.lastSweep) >= sweepEvery {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.cfg.Burst) {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.buckets[caller]
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.cfg.PerMinute/60), l.cfg.Burst)
		l.buckets[caller] = b
	}
	res := b.ReserveN(now, 1)
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// retryAfter is the Retry-After value for a wait of d: whole seconds,
// rounded up, at least 1.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
