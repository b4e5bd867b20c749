package job

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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

func TestWhileUnavailable(t *testing.T) {
	t.Parallel()
	restarting := &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}
	refused := errors.New("duplicate key")
	t.Run("retried until the database is back", func(t *testing.T) {
		t.Parallel()
		calls := 0
		err := whileUnavailable(t.Context(), time.Minute, func() error {
			calls++
			if calls < 3 {
				return fmt.Errorf("storing: %w", restarting)
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("whileUnavailable = %v after %d calls; want nil after 3", err, calls)
		}
	})
	t.Run("other errors at once", func(t *testing.T) {
		t.Parallel()
		calls := 0
		err := whileUnavailable(t.Context(), time.Minute, func() error { calls++; return refused })
		if !errors.Is(err, refused) || calls != 1 {
			t.Errorf("whileUnavailable = %v after %d calls; want the error after 1", err, calls)
		}
	})
	t.Run("gives up at the limit", func(t *testing.T) {
		t.Parallel()
		calls := 0
		err := whileUnavailable(t.Context(), 600*time.Millisecond, func() error { calls++; return restarting })
		if !errors.Is(err, restarting) || calls != 2 { // at 0 and 250 ms; the next wait (500 ms) passes the limit
			t.Errorf("whileUnavailable = %v after %d calls; want the error after 2", err, calls)
		}
	})
}
