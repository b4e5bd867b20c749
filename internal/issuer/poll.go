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

// wait sleeps for the next delay, honouring the Retry-After the CA sent
// with the last response (zero when none), or until ctx is done.
func (b *backoff) wait(ctx context.Context, hint retryHint) error {
	retryAfter, _ := hint.delay(time.Now())
	d := b.delay(retryAfter)
	if b.observe != nil {
		b.observe(hint.value, retryAfter, d)
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

// retryHint is what a response says about when to ask again: its
// Retry-After header and its Date header (the CA's clock when it answered).
type retryHint struct {
	value, date string
}

// delay is how long the hint asks to wait, read at now (certkeeper's
// clock). A Retry-After given as an HTTP date is a moment on the CA's
// clock: it is read against the response's Date, the CA's own idea of now,
// when the response has a valid one, so that a CA whose clock is ahead of
// certkeeper's does not make it wait longer, nor one whose clock is behind
// make it ask again at once. Without a Date it is read against now.
func (h retryHint) delay(now time.Time) (time.Duration, bool) {
	if date, err := http.ParseTime(strings.TrimSpace(h.date)); err == nil {
		now = date
	}
	return parseRetryAfter(h.value, now)
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

// retryAfterSink receives the Retry-After and Date headers of the POST (or
// GET) to url. lego's POST-as-GET helpers drop response headers; the transport below
// catches them.
type retryAfterSink struct {
	url string

	mu   sync.Mutex
	hint retryHint
}

func (s *retryAfterSink) set(h retryHint) {
	s.mu.Lock()
	s.hint = h
	s.mu.Unlock()
}

// get returns the headers of the last response seen (empty when none).
func (s *retryAfterSink) get() retryHint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hint
}

// withRetryAfterSink returns a context whose requests to url report their
// Retry-After header to the returned sink.
func withRetryAfterSink(ctx context.Context, url string) (context.Context, *retryAfterSink) {
	s := &retryAfterSink{url: url}
	return context.WithValue(ctx, retryAfterKey{}, s), s
}

// retryAfterTransport records the Retry-After and Date headers of responses
// to POSTs (and to the GET of renewal information) whose context carries a
// retryAfterSink for the request's URL.
type retryAfterTransport struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if resp != nil && (req.Method == http.MethodPost || req.Method == http.MethodGet) {
		if s, ok := req.Context().Value(retryAfterKey{}).(*retryAfterSink); ok && s.url == req.URL.String() {
			s.set(retryHint{value: resp.Header.Get("Retry-After"), date: resp.Header.Get("Date")})
		}
	}
	return resp, err
}
