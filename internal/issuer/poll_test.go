package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		value  string
		want   time.Duration
		wantOK bool
	}{
		{name: "empty", value: "", want: 0, wantOK: false},
		{name: "seconds", value: "3", want: 3 * time.Second, wantOK: true},
		{name: "zero seconds", value: "0", want: 0, wantOK: true},
		{name: "padded seconds", value: " 7 ", want: 7 * time.Second, wantOK: true},
		{name: "negative", value: "-5", want: 0, wantOK: false},
		{name: "huge seconds are bounded", value: "99999999999999999", want: 24 * time.Hour, wantOK: true},
		{name: "IMF-fixdate", value: "Sun, 01 Mar 2026 12:00:05 GMT", want: 5 * time.Second, wantOK: true},
		{name: "RFC 850 date", value: "Sunday, 01-Mar-26 12:00:10 GMT", want: 10 * time.Second, wantOK: true},
		{name: "asctime date", value: "Sun Mar  1 12:00:02 2026", want: 2 * time.Second, wantOK: true},
		{name: "date in the past", value: "Sun, 01 Mar 2026 11:59:00 GMT", want: 0, wantOK: true},
		{name: "garbage", value: "soon", want: 0, wantOK: false},
		{name: "fraction", value: "1.5", want: 0, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseRetryAfter(tc.value, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.value, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name        string
		retryAfters []time.Duration
		want        []time.Duration
	}{
		{
			name:        "grows by half to the cap",
			retryAfters: make([]time.Duration, 13),
			want: []time.Duration{25 * ms, 37500 * time.Microsecond, 56250 * time.Microsecond, 84375 * time.Microsecond,
				126562500, 189843750, 284765625, 427148437, 640722655, 961083982, 1441625973, 2 * time.Second, 2 * time.Second},
		},
		{
			name:        "retry-after is a floor",
			retryAfters: []time.Duration{time.Second, 0, 50 * ms, 3 * time.Second},
			want:        []time.Duration{time.Second, 37500 * time.Microsecond, 56250 * time.Microsecond, 3 * time.Second},
		},
		{
			name:        "retry-after is capped at 30s",
			retryAfters: []time.Duration{10 * time.Minute, 0},
			want:        []time.Duration{30 * time.Second, 37500 * time.Microsecond},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b backoff
			var got []time.Duration
			for _, ra := range tc.retryAfters {
				got = append(got, b.delay(ra))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffWaitStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("job cancelled")
	cancel(cause)
	b := backoff{}
	// A 30-second Retry-After would block the test if wait ignored ctx.
	if err := b.wait(ctx, retryHint{value: "30"}); !errors.Is(err, cause) {
		t.Errorf("wait = %v, want %v", err, cause)
	}
}

func TestBackoffWaitObservesHeader(t *testing.T) {
	t.Parallel()
	var got []string
	b := backoff{observe: func(header string, retryAfter, delay time.Duration) {
		got = append(got, header, retryAfter.String(), delay.String())
	}}
	if err := b.wait(t.Context(), retryHint{value: "0"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0", "0s", pollInitial.String()}, got); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}

func TestRetryAfterTransport(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "4")
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &retryAfterTransport{base: http.DefaultTransport}}

	tests := []struct {
		name    string
		method  string
		sinkURL string
		want    string
	}{
		{name: "POST to the sink's URL", method: http.MethodPost, sinkURL: srv.URL + "/authz/1", want: "4"},
		{name: "POST to another URL", method: http.MethodPost, sinkURL: srv.URL + "/authz/2", want: ""},
		{name: "HEAD for a nonce", method: http.MethodHead, sinkURL: srv.URL + "/authz/1", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, sink := withRetryAfterSink(t.Context(), tc.sinkURL)
			req, err := http.NewRequestWithContext(ctx, tc.method, srv.URL+"/authz/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if got := sink.get().value; got != tc.want {
				t.Errorf("sink = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRetryAfterDateUnderClockSkew has a CA, whose clock is ahead of or
// behind certkeeper's, answer a poll with Retry-After as an HTTP date three
// seconds after its own now, and its Date header, over real HTTP through the
// transport and the sink. certkeeper must wait three seconds whatever the
// skew: the date is read against the CA's Date. (Read against certkeeper's
// own clock it would be skew + 3 s: a wait capped at 30 s for a CA ahead,
// none at all for one behind.)
func TestRetryAfterDateUnderClockSkew(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{-2 * time.Hour, -5 * time.Minute, 0, 5 * time.Minute, 2 * time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				caNow := time.Now().Add(skew)
				w.Header().Set("Date", caNow.UTC().Format(http.TimeFormat))
				w.Header().Set("Retry-After", caNow.Add(3*time.Second).UTC().Format(http.TimeFormat))
			}))
			t.Cleanup(srv.Close)
			client := &http.Client{Transport: &retryAfterTransport{base: http.DefaultTransport}}
			ctx, sink := withRetryAfterSink(t.Context(), srv.URL+"/order/1")
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/order/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			hint := sink.get()
			// HTTP dates have whole seconds: the CA's 3 s is 3 s exactly
			// against its Date, and certkeeper reads it a moment later.
			got, ok := hint.delay(time.Now())
			if !ok || got != 3*time.Second {
				t.Errorf("Retry-After %q with Date %q read as %v, %v; want 3s", hint.value, hint.date, got, ok)
			}
			withoutDate, _ := retryHint{value: hint.value}.delay(time.Now())
			t.Logf("CA clock %+v: waits %v (read against certkeeper's clock: %v)", skew, got, withoutDate.Round(time.Second))
		})
	}
}

func TestRetryHint(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		hint retryHint
		want time.Duration
	}{
		{"seconds ignore the Date", retryHint{value: "4", date: "Sun, 01 Mar 2026 14:00:00 GMT"}, 4 * time.Second},
		{"date against a Date ahead", retryHint{value: "Sun, 01 Mar 2026 14:00:05 GMT", date: "Sun, 01 Mar 2026 14:00:00 GMT"}, 5 * time.Second},
		{"date against a Date behind", retryHint{value: "Sun, 01 Mar 2026 10:00:05 GMT", date: "Sun, 01 Mar 2026 10:00:00 GMT"}, 5 * time.Second},
		{"date before the Date", retryHint{value: "Sun, 01 Mar 2026 09:59:00 GMT", date: "Sun, 01 Mar 2026 10:00:00 GMT"}, 0},
		{"no Date: certkeeper's clock", retryHint{value: "Sun, 01 Mar 2026 12:00:07 GMT"}, 7 * time.Second},
		{"bad Date: certkeeper's clock", retryHint{value: "Sun, 01 Mar 2026 12:00:07 GMT", date: "yesterday"}, 7 * time.Second},
	}
	for _, tc := range tests {
		if got, _ := tc.hint.delay(now); got != tc.want {
			t.Errorf("%s: %+v read as %v, want %v", tc.name, tc.hint, got, tc.want)
		}
	}
}
