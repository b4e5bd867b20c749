package e2e

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestChaosPostgres is TestChaos's SIGKILL scenario on PostgreSQL, with the
// database itself crashed underneath. It runs on a private cluster of its
// own, so that restarting it disturbs no other test. Each round SIGKILLs
// certkeeper at a random moment during the concurrent issuances; every
// other round crashes PostgreSQL too (pg_ctl stop -m immediate: no
// checkpoint, recovery from the WAL at the next start) while certkeeper is
// down; then certkeeper is started again, and at a random moment after,
// PostgreSQL is crashed (even rounds) or restarted fast (odd rounds) while
// certkeeper runs, which must ride through: reconnect, resume its jobs,
// leave no operation stuck. Afterwards the cluster must pass pg_amcheck
// (heap and every B-tree index, --heapallindexed) and pg_checksums, and the
// tables must agree with each other. CERTKEEPER_CHAOS_LONG=1 runs 50
// issuances and 10 rounds.
func TestChaosPostgres(t *testing.T) {
	t.Parallel()
	n, rounds := chaosSize()
	pg := testenv.StartPrivatePostgres(t)
	s := startStack(t, "postgres", stackOptions{
		Database: pg.URL,
		Pebble: &testenv.PebbleOptions{
			NonceRejectPercent: 50,
			// Validations sleep up to 10 s (TestChaos: 3 s), so that the
			// issuances are still in flight through the later rounds.
			EnvExtra: []string{"PEBBLE_VA_NOSLEEP=0", "PEBBLE_VA_SLEEPTIME=10"},
		},
		// A job left running by a killed process is taken over once
		// rescueAfter has passed since its last renewal.
		Jobs: map[string]any{"timeout": "2m", "rescueAfter": "6s"},
		// Every issuance accepted at once, not in rate-limited waves, so
		// that all are in flight when the disturbances begin.
		RateLimit: map[string]any{"perMinute": 6000, "burst": 100},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	defer func() {
		if t.Failed() {
			t.Logf("PostgreSQL log:\n%s", tail(pg.Log(), 20000))
		}
	}()

	crashes, fastRestarts, whileRunning := 0, 0, 0
	var calm time.Time // when the last disturbance ended
	var inFlight []int // operations pending or running at each disturbance
	tally := s.chaosBatch(ctx, t, "pgkill", n, func() {
		for i := range rounds {
			time.Sleep(time.Duration(300+rand.IntN(2700)) * time.Millisecond)
			inFlight = append(inFlight, countInFlight(ctx, t, pg.URL))
			if err := s.srv.kill(); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				if err := pg.Restart("immediate"); err != nil {
					t.Fatal(err)
				}
				crashes++
			}
			s.srv.restart()
			time.Sleep(time.Duration(300+rand.IntN(2700)) * time.Millisecond)
			mode := "immediate"
			if i%2 == 1 {
				mode = "fast"
			}
			inFlight = append(inFlight, countInFlight(ctx, t, pg.URL))
			began := time.Now()
			if err := pg.Restart(mode); err != nil {
				t.Fatal(err)
			}
			if mode == "immediate" {
				crashes++
			} else {
				fastRestarts++
			}
			whileRunning++
			t.Logf("round %d: killed certkeeper%s, restarted it, then PostgreSQL restarted -m %s under it (down %v)",
				i+1, map[bool]string{true: " and crashed PostgreSQL", false: ""}[i%2 == 0], mode, time.Since(began).Round(time.Millisecond))
		}
		calm = time.Now()
	})
	t.Logf("FIGURE every operation ended %v after the last disturbance", time.Since(calm).Round(100*time.Millisecond))
	t.Logf("FIGURE operations pending or running at each kill and each restart under certkeeper: %v", inFlight)
	t.Logf("FIGURE postgres kill (%d rounds; PostgreSQL crashed %d times, restarted fast %d times, %d of them under a running certkeeper): %v %v",
		rounds, crashes, fastRestarts, whileRunning, tally, tally.Reasons)
	// A database restart is not a reason for an issuance to fail: the only
	// failure allowed is the CA's, badNonce exhaustion (see TestChaos).
	if tally.Succeeded+tally.FailedWithReason != n || tally.FailedWithReason != tally.Reasons["badNonce"] {
		t.Errorf("%v %v; want every operation succeeded or failed naming badNonce", tally, tally.Reasons)
	}
	logDBTrouble(t, s.srv.logPath)
	if tally.Stuck > 0 {
		explainStuck(ctx, t, pg.URL, s.srv.logPath)
	}
	// certkeeper rode through the last restart under it: it still issues.
	after := s.chaosBatch(ctx, t, "pgafter", 1, func() {})
	if after.Succeeded != 1 {
		t.Errorf("issuance after the chaos: %v; want it to succeed", after)
	}

	if err := s.srv.stop(); err != nil {
		t.Errorf("certkeeper did not stop cleanly after the chaos: %v", err)
	}
	checkPostgresConsistency(ctx, t, pg.URL)
	if out, err := pg.Amcheck(ctx); errors.Is(err, testenv.ErrNoAmcheck) {
		t.Log("pg_amcheck is not installed; only the consistency queries ran")
	} else if err != nil {
		t.Errorf("pg_amcheck: %v\n%s", err, out)
	} else {
		t.Logf("FIGURE pg_amcheck: no corruption reported (%d relations checked)", strings.Count(out, "checking btree index")+strings.Count(out, "checking heap table"))
	}
	if out, err := pg.VerifyChecksums(); err != nil {
		t.Errorf("pg_checksums: %v\n%s", err, out)
	} else {
		t.Logf("FIGURE pg_checksums: %s", out)
	}
	s.srv.restart() // the stack's cleanup stops it
}

// checkPostgresConsistency asks the database what the crashes could have
// broken: operations left pending or running, jobs left running, leases
// held by finished operations, versions without their operation or
// certificate, succeeded operations without their version, and reports
// any row it finds.
func checkPostgresConsistency(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to check consistency: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	checks := []struct{ what, sql string }{
		{"operations still pending or running", `SELECT count(*) FROM operations WHERE status IN ('pending', 'running')`},
		{"issue jobs not finished", `SELECT count(*) FROM river_job WHERE kind = 'certkeeper_issue' AND state NOT IN ('completed', 'cancelled', 'discarded')`},
		{"leases held by finished operations", `SELECT count(*) FROM certificate_leases l JOIN operations o ON o.id = l.operation_id WHERE o.status NOT IN ('pending', 'running')`},
		{"succeeded operations without their version", `SELECT count(*) FROM operations o WHERE o.status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM certificate_versions v WHERE v.id = o.version_id)`},
		{"versions without a succeeded operation", `SELECT count(*) FROM certificate_versions v WHERE NOT EXISTS (SELECT 1 FROM operations o WHERE o.id = v.id AND o.status = 'succeeded')`},
		{"versions of an unknown certificate", `SELECT count(*) FROM certificate_versions v WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.name = v.certificate_name)`},
		{"failed operations without a reason", `SELECT count(*) FROM operations WHERE status = 'failed' AND (error = '' OR failed_step = '')`},
		{"challenges still marked presented", `SELECT count(*) FROM operations WHERE status NOT IN ('pending', 'running') AND pending_challenges NOT IN ('', '[]', 'null')`},
	}
	for _, c := range checks {
		var n int
		if err := conn.QueryRow(ctx, c.sql).Scan(&n); err != nil {
			t.Errorf("checking %s: %v", c.what, err)
			continue
		}
		if n != 0 {
			t.Errorf("consistency: %d %s", n, c.what)
		}
	}
	t.Logf("FIGURE consistency queries: %d checks run", len(checks))
	var attempts []int
	rows, err := conn.Query(ctx, `SELECT attempt FROM river_job WHERE kind = 'certkeeper_issue' ORDER BY attempt DESC`)
	if err == nil {
		attempts, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	if err != nil {
		t.Errorf("reading job attempts: %v", err)
	}
	t.Logf("FIGURE job attempts (highest first): %v", attempts)
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// logDBTrouble logs how many warnings and errors certkeeper wrote, and the
// distinct messages among them, so that the run shows what riding through
// the restarts looked like.
func logDBTrouble(t *testing.T, logPath string) {
	t.Helper()
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Logf("reading certkeeper log: %v", err)
		return
	}
	msgs := map[string]int{}
	warn := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		warn++
		msg := line
		if _, after, ok := strings.Cut(line, "msg="); ok {
			msg = after
			if i := strings.Index(msg, " component="); i > 0 {
				msg = msg[:i]
			} else if len(msg) > 100 {
				msg = msg[:100]
			}
		}
		msgs[msg]++
		if strings.Contains(line, "msg=\"operation failed\"") {
			t.Logf("certkeeper: %s", line)
		}
	}
	t.Logf("certkeeper wrote %d warnings and errors: %v", warn, msgs)
}

// countInFlight counts the operations pending or running, or -1 when the
// database cannot say.
func countInFlight(ctx context.Context, t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return -1
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM operations WHERE status IN ('pending', 'running')`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// explainStuck logs, for each operation still pending or running, its job
// row and certkeeper's log lines about it.
func explainStuck(ctx context.Context, t *testing.T, url, logPath string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Logf("explaining stuck operations: %v", err)
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT o.id, o.status, o.attempt, coalesce(j.state::text, '-'), coalesce(j.attempt, 0),
			coalesce(j.attempted_by::text, '-'), coalesce(j.errors::text, '-')
		FROM operations o LEFT JOIN river_job j ON j.kind = 'certkeeper_issue' AND j.args->>'operationId' = o.id
		WHERE o.status IN ('pending', 'running')`)
	if err != nil {
		t.Logf("explaining stuck operations: %v", err)
		return
	}
	var ids []string
	for rows.Next() {
		var id, status, jstate, by, errs string
		var attempt, jattempt int
		if err := rows.Scan(&id, &status, &attempt, &jstate, &jattempt, &by, &errs); err != nil {
			t.Logf("explaining stuck operations: %v", err)
			return
		}
		ids = append(ids, id)
		t.Logf("stuck operation %s: %s, attempt %d; job %s, attempt %d, by %s, errors %s", id, status, attempt, jstate, jattempt, by, errs)
	}
	raw, _ := os.ReadFile(logPath)
	for _, line := range strings.Split(string(raw), "\n") {
		for _, id := range ids {
			if strings.Contains(line, id) || strings.HasPrefix(line, "--- certkeeper serve started") {
				t.Logf("log: %s", line)
				break
			}
		}
	}
}
