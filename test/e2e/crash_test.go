package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestCrashDuringIssuance kills certkeeper with SIGKILL while an issuance has
// its TXT record in BIND, starts it again with the same config and data, and
// expects the same operation to complete and no record to be left behind.
func TestCrashDuringIssuance(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db string) {
		s := startStack(t, db, stackOptions{
			// Pebble's VA waits up to 3 s before validating and asks for a
			// 1 s pause between authorization polls, so that the issuance
			// is still running when its record shows up.
			Pebble: &testenv.PebbleOptions{
				NonceRejectPercent: 20,
				RetryAfterAuthz:    1,
				EnvExtra:           []string{"PEBBLE_VA_NOSLEEP=0", "PEBBLE_VA_SLEEPTIME=3"},
			},
			// With PostgreSQL, a job left running is taken over once
			// rescueAfter has passed (SQLite takes over at start).
			Jobs: map[string]any{"timeout": "20s", "rescueAfter": "25s"},
		})
		ctx := testCtx(t)
		names := []string{"crash." + zone, "*.crash." + zone}
		loc := s.issue(ctx, t, map[string]any{"dnsNames": names, "certificateName": "crash"})

		// Wait for the challenge record: proof that the issuance is mid-way.
		for len(s.challengeOwners(ctx, t, names...)) == 0 {
			r := s.srv.do(ctx, t, http.MethodGet, loc, s.issuerKey, nil)
			if r.Status != http.StatusAccepted {
				t.Fatalf("operation ended with %s before its TXT record was seen in BIND", r)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no TXT record appeared: %v", ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
		if err := s.srv.kill(); err != nil {
			t.Fatal(err)
		}
		killedAt := time.Now()
		t.Logf("%s: killed certkeeper while TXT records were present: %v", db, s.challengeOwners(ctx, t, names...))

		s.srv.restart()
		s.waitSucceeded(ctx, t, loc)
		t.Logf("%s: operation completed %v after the kill", db, time.Since(killedAt))
		s.assertNoChallengeRecords(ctx, t, names...)
		item := s.certificate(ctx, t, "crash")
		checkItem(t, item, names, "RSA", 2048, "")
		checkIssued(ctx, t, s, item, names)
	})
}
