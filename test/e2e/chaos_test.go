package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// chaosSize is the number of concurrent issuances and of kill rounds: a
// short run in CI, the 50 × 10 with CERTKEEPER_CHAOS_LONG=1.
func chaosSize() (issuances, rounds int) {
	if os.Getenv("CERTKEEPER_CHAOS_LONG") == "1" {
		return 50, 10
	}
	return 8, 3
}

// chaosTally is the figure of one scenario.
type chaosTally struct {
	Attempted, Succeeded, FailedWithReason, FailedWithoutReason, Stuck, TXTLeft, DuplicateVersions int
	// Reasons counts failures by a keyword of their reason.
	Reasons map[string]int
}

func (c chaosTally) String() string {
	return fmt.Sprintf("attempted %d, succeeded %d, failed with reason %d, failed without reason %d, stuck %d, TXT left %d, duplicate versions %d",
		c.Attempted, c.Succeeded, c.FailedWithReason, c.FailedWithoutReason, c.Stuck, c.TXTLeft, c.DuplicateVersions)
}

// TestChaos runs, on SQLite, issuances against a Pebble that rejects half
// of all nonces and sleeps up to 3 s before each validation: first a batch
// left alone, then a batch during which certkeeper is SIGKILLed at random
// moments several rounds in a row and restarted each time. Every operation
// must end succeeded or failed with a reason, no TXT record and no second
// version may be left, and the SQLite file must pass PRAGMA
// integrity_check. Run it alone with `go test ./test/e2e -run TestChaos`;
// CERTKEEPER_CHAOS_LONG=1 runs 50 issuances and 10 kills.
func TestChaos(t *testing.T) {
	t.Parallel()
	n, rounds := chaosSize()
	s := startStack(t, "sqlite", stackOptions{
		Pebble: &testenv.PebbleOptions{
			NonceRejectPercent: 50,
			EnvExtra:           []string{"PEBBLE_VA_NOSLEEP=0", "PEBBLE_VA_SLEEPTIME=3"},
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()

	t.Run("nonce rejection and validation sleeps", func(t *testing.T) {
		tally := s.chaosBatch(ctx, t, "nonce", n, func() {})
		t.Logf("FIGURE nonce: %v", tally)
		// lego retries a badNonce answer for 20 s with backoff (about
		// eight tries), so at 50% rejection about one request in 2^8 fails
		// for good: such a failure must say so; any other is a defect.
		if tally.Succeeded+tally.FailedWithReason != n || tally.FailedWithReason != tally.Reasons["badNonce"] {
			t.Errorf("%v (%v); want every operation succeeded or failed naming badNonce", tally, tally.Reasons)
		}
	})

	t.Run("SIGKILL during concurrent issuances", func(t *testing.T) {
		tally := s.chaosBatch(ctx, t, "kill", n, func() {
			for i := range rounds {
				time.Sleep(time.Duration(300+rand.IntN(2700)) * time.Millisecond)
				if err := s.srv.kill(); err != nil {
					t.Fatal(err)
				}
				t.Logf("kill round %d", i+1)
				s.srv.restart()
			}
		})
		t.Logf("FIGURE kill (%d rounds): %v", rounds, tally)
		if tally.Succeeded+tally.FailedWithReason != n {
			t.Errorf("%v; want every operation ended succeeded or failed with a reason", tally)
		}
	})

	t.Run("CA restarted mid-order", func(t *testing.T) {
		// Pebble keeps everything in memory: a restart forgets accounts,
		// orders and authorizations, as a CA losing its database would.
		tally := s.chaosBatch(ctx, t, "ca", n, func() {
			for range 2 {
				time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
				s.pebble.Restart(t)
			}
		})
		t.Logf("FIGURE CA restart: %v %v", tally, tally.Reasons)
		if tally.Succeeded+tally.FailedWithReason != n {
			t.Errorf("%v; want every operation ended succeeded or failed with a reason", tally)
		}
		// Once the CA is back, issuance works again: the account is made
		// anew.
		after := s.chaosBatch(ctx, t, "ca-after", 1, func() {})
		t.Logf("FIGURE after CA restart: %v", after)
		if after.Succeeded != 1 {
			t.Errorf("issuance after the CA came back: %v; want it to succeed", after)
		}
	})

	if err := s.srv.stop(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(s.srv.cfg["dataDir"].(string), "certkeeper.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := st.DB().QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("PRAGMA integrity_check = %q, %v; want ok", check, err)
	}
	t.Logf("FIGURE integrity_check: %s", check)
	st.Close()      // SQLite serves one process: release it for the restart
	s.srv.restart() // the stack's cleanup stops it
}

// chaosBatch starts n issuances at once, runs disturb, waits (generously)
// for every operation to end and counts the outcomes.
func (s *stack) chaosBatch(ctx context.Context, t *testing.T, prefix string, n int, disturb func()) chaosTally {
	t.Helper()
	locs := make([]string, n)
	names := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		names[i] = prefix + strconv.Itoa(i) + "." + zone
		wg.Go(func() {
			// As a client should, wait and try again when rate limited.
			for {
				r := s.srv.postJSON(ctx, t, "/api/certificate", s.issuerKey, map[string]any{"dnsNames": []string{names[i]}, "keyType": "EC"})
				if r.Status != http.StatusTooManyRequests {
					locs[i] = s.srv.accepted(t, r)
					return
				}
				time.Sleep(time.Second)
			}
		})
	}
	wg.Wait()
	disturb()

	tally := chaosTally{Attempted: n, Reasons: map[string]int{}}
	deadline := time.Now().Add(4 * time.Minute)
	for i, loc := range locs {
		for {
			r := s.srv.do(ctx, t, http.MethodGet, loc, s.issuerKey, nil)
			if r.Status == http.StatusOK {
				tally.Succeeded++
				break
			}
			if r.Status != http.StatusAccepted {
				if p := decodeProblem(t, r); p.Detail != "" {
					tally.FailedWithReason++
					for _, k := range []string{"badNonce", "accountDoesNotExist", "interrupted", "timeout"} {
						if strings.Contains(p.Detail, k) {
							tally.Reasons[k]++
						}
					}
					t.Logf("%s failed: %s", names[i], p.Detail)
				} else {
					tally.FailedWithoutReason++
					t.Errorf("%s ended %s without a reason", names[i], r)
				}
				break
			}
			if time.Now().After(deadline) {
				tally.Stuck++
				t.Errorf("%s still running after the deadline", names[i])
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		vr := s.srv.do(ctx, t, http.MethodGet, "/api/certificates/"+prefix+strconv.Itoa(i)+"-example-test/versions", s.issuerKey, nil)
		var versions []json.RawMessage
		if vr.Status == http.StatusOK {
			if err := json.Unmarshal(vr.Body, &versions); err != nil {
				t.Fatalf("versions of %s: %v", names[i], err)
			}
		}
		if len(versions) > 1 {
			tally.DuplicateVersions += len(versions) - 1
			t.Errorf("%s has %d versions after one issuance", names[i], len(versions))
		}
	}
	tally.TXTLeft = len(s.challengeOwners(ctx, t, names...))
	if tally.TXTLeft != 0 {
		t.Errorf("%d challenge records left", tally.TXTLeft)
	}
	return tally
}
