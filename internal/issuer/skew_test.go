package issuer

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// skewedCA makes Pebble's answers look as a CA's whose clock is skew ahead
// of certkeeper's (behind when negative) and that sends Retry-After as an
// HTTP date: each response's Date is certkeeper's now plus skew, and a
// Retry-After of N seconds becomes that Date plus N seconds. (Pebble, a Go
// program, cannot have its own clock shifted: libfaketime does not reach
// Go's clock. The dates it puts in certificates and renewal windows are its
// real time; TestSchedulerUnderClockSkew covers those.)
type skewedCA struct {
	base http.RoundTripper
	skew time.Duration
}

func (s *skewedCA) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	// Pebble's own Date, on the real clock, moved to the skewed one.
	pebbleNow, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		pebbleNow = time.Now()
	}
	caNow := pebbleNow.Add(s.skew)
	resp.Header.Set("Date", caNow.UTC().Format(http.TimeFormat))
	// Pebble sends Retry-After as seconds or, half of the time, as a date
	// on its (the real) clock: either way it becomes a date on the CA's.
	ra := resp.Header.Get("Retry-After")
	if n, err := strconv.Atoi(ra); err == nil {
		resp.Header.Set("Retry-After", caNow.Add(time.Duration(n)*time.Second).UTC().Format(http.TimeFormat))
	} else if at, err := http.ParseTime(ra); err == nil {
		resp.Header.Set("Retry-After", at.Add(s.skew).UTC().Format(http.TimeFormat))
	}
	return resp, nil
}

// TestObtainUnderClockSkew issues a certificate from a CA whose clock is
// minutes or hours ahead of certkeeper's or behind it, and asks it for the
// certificate's renewal information. Issuance must succeed, every poll must
// wait the CA's Retry-After (1 s; not 0 s for a CA behind, not the 30 s cap
// for one ahead), and the renewal information's Retry-After must be the
// CA's 6 hours.
func TestObtainUnderClockSkew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{RetryAfterAuthz: 1, RetryAfterOrder: 1})
	for _, skew := range []time.Duration{-3 * time.Hour, -10 * time.Minute, 10 * time.Minute, 3 * time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			client := e.pebble.HTTPClient()
			client.Transport = &skewedCA{base: client.Transport, skew: skew}
			iss := New(Config{DirectoryURL: e.pebble.DirectoryURL, HTTPClient: client, UserAgent: "certkeeper-test"}, newMemAccounts())
			var (
				mu    sync.Mutex
				waits []time.Duration
			)
			iss.observeWait = func(header string, retryAfter, delay time.Duration) {
				if header == "" {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				waits = append(waits, retryAfter)
				if retryAfter < 900*time.Millisecond || retryAfter > time.Second {
					t.Errorf("Retry-After %q read as %v; want the CA's 1 s", header, retryAfter)
				}
			}
			start := time.Now()
			cert, err := iss.Obtain(t.Context(), Request{Names: []string{"skew.example.test"}, KeyType: "EC"}, e.solver(), nil)
			if err != nil {
				t.Fatalf("Obtain with the CA's clock %v off: %v", skew, err)
			}
			took := time.Since(start)
			info, err := iss.RenewalInfo(t.Context(), cert.Leaf)
			if err != nil {
				t.Fatalf("RenewalInfo: %v", err)
			}
			// A second elapses at most between Pebble's answer and the read.
			if info.RetryAfter < 6*time.Hour-time.Second || info.RetryAfter > 6*time.Hour {
				t.Errorf("renewal information Retry-After = %v; want the CA's 6h", info.RetryAfter)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(waits) == 0 {
				t.Error("no poll followed a Retry-After date")
			}
			t.Logf("CA clock %v: issued in %v, %d polls waited a Retry-After date, ARI Retry-After %v",
				skew, took.Round(10*time.Millisecond), len(waits), info.RetryAfter.Round(time.Second))
		})
	}
}
