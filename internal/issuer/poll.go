package issuer

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Polling intervals: the first poll comes soon, since a fast CA (Pebble, a
// busy Boulder) often finishes within a few hundred milliseconds, then the
// interval grows so a slow CA is not hammered. The first wait was 100 ms
// until the benchmarks (issue 11, docs/benchmarks.md) showed it was half of
// a one-name issuance against a CA that answers at once: one wait after the
// challenges, one after finalize. At 25 ms a CA that takes 2 s costs four
// more polls per authorization.
const (
	pollInitial    = 25 * time.Millisecond
	pollMax        = 2 * time.Second
	pollGrowth     = 1.5
	retryAfterMax  = 30 * time.Second
	cleanupTimeout = 30 * time.Second
)

// backoff is the adaptive wait between two polls of one resource. The zero
// value starts at pollInitial. It is not safe for concurrent use.
type backoff struct {
	next time.Duration
	// observe, when set, is told of every wait: the Retry-After header
	// value, its parsed duration and the delay chosen. Tests use it.
	observe func(header string, retryAfter, delay time.Duration)
}

// delay returns how long to wait before the next poll and advances the
// backoff. A Retry-After the CA sent (capped at retryAfterMax) is a floor.
func (b *backoff) delay(retryAfter time.Duration) time.Duration {
	if b.next <= 0 {
		b.next = pollInitial
	}
	d := b.next
	b.next = min(time.Duration(float64(b.next)*pollGrowth), pollMax)
	if retryAfter > 0 {
		d = max(d, min(retryAfter, retryAfterMax))
	}
	return d
}

// wait sleeps for the next delay, honouring the Retry-After header value
// the CA sent with the last response (empty when none), or until ctx is done.
func (b *backoff) wait(ctx context.Context, retryAfterHeader string) error {
	retryAfter, _ := parseRetryAfter(retryAfterHeader, time.Now())
	d := b.delay(retryAfter)
	if b.observe != nil {
		b.observe(retryAfterHeader, retryAfter, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// parseRetryAfter parses a Retry-After header value, either delay-seconds or
// an HTTP date (RFC 9110 section 10.2.3), relative to now. It reports false
// for an empty or unparsable value; a date in the past is a zero wait.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		secs = min(secs, 86400) // keeps the Duration from overflowing; callers cap lower
		return time.Duration(secs) * time.Second, true
	}
	at, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// retryAfterKey is the context key of the retryAfterSink a poll installs.
type retryAfterKey struct{}

// retryAfterSink receives the Retry-After header of the POST to url. lego's
// POST-as-GET helpers drop response headers; the transport below catches it.
type retryAfterSink struct {
	url string

	mu    sync.Mutex
	value string
}

func (s *retryAfterSink) set(v string) {
	s.mu.Lock()
	s.value = v
	s.mu.Unlock()
}

// get returns the last Retry-After header value seen, or "".
func (s *retryAfterSink) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.value
}

// withRetryAfterSink returns a context whose requests to url report their
// Retry-After header to the returned sink.
func withRetryAfterSink(ctx context.Context, url string) (context.Context, *retryAfterSink) {
	s := &retryAfterSink{url: url}
	return context.WithValue(ctx, retryAfterKey{}, s), s
}

// retryAfterTransport records the Retry-After header of responses to POSTs
// whose context carries a retryAfterSink for the request's URL.
type retryAfterTransport struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if resp != nil && req.Method == http.MethodPost {
		if s, ok := req.Context().Value(retryAfterKey{}).(*retryAfterSink); ok && s.url == req.URL.String() {
			s.set(resp.Header.Get("Retry-After"))
		}
	}
	return resp, err
}
