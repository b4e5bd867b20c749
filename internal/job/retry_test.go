package job

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}
	var total time.Duration
	for i, w := range want {
		if got := retryDelay(i + 1); got != w {
			t.Errorf("retryDelay(%d) = %v, want %v", i+1, got, w)
		}
	}
	for attempt := 1; attempt < 25; attempt++ { // MaxAttempts is 25
		total += retryDelay(attempt)
	}
	if total < time.Hour {
		t.Errorf("24 retries span %v; want a database outage of an hour ridden out", total)
	}
}
