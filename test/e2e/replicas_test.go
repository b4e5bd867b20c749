package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to look into the shared database

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// cluster is BIND, Pebble, one PostgreSQL database and certkeeper replicas
// sharing it, as several replicas behind a load balancer are deployed.
type cluster struct {
	bind      *testenv.BIND
	pebble    *testenv.Pebble
	db        *sql.DB
	issuerKey string
	// cfg is every replica's configuration, but for the listen address.
	cfg      map[string]any
	replicas []*server
}

func newCluster(t *testing.T, jobs, housekeeping map[string]any) *cluster {
	t.Helper()
	bind := testenv.StartBIND(t, testenv.BINDOptions{Zones: zones})
	pebble := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, BlockedDomains: []string{refusedZone}, NonceRejectPercent: 20})
	dbURL := testenv.PostgresURL(t)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, masterKey, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{bind: bind, pebble: pebble, db: db, issuerKey: "ik-" + randomHex(16)}
	c.cfg = map[string]any{
		"database": dbURL,
		// Replicas share the master key: each reads what another stored.
		"masterKey": masterKey,
		"acme": map[string]any{
			"endpoint": pebble.DirectoryURL,
			"contacts": []string{"admin@example.test"},
			"caBundle": pebble.CABundle,
		},
		"dns": map[string]any{
			"resolvers":          []string{bind.Addr},
			"propagationTimeout": "20s",
			"providers": []map[string]any{{
				"name": "BIND", "type": "rfc2136", "zones": zones, "nameserver": bind.Addr,
				"tsigKeyName": bind.TSIGKeyName, "tsigAlgorithm": bind.TSIGAlgorithm, "tsigSecret": bind.TSIGSecret,
			}},
		},
		"auth": map[string]any{
			"apiKeys": []map[string]any{{"name": "issuer", "key": c.issuerKey, "roles": []string{roleIssue, roleRevoke}}},
		},
		"log": map[string]any{"level": "info", "format": "text"},
	}
	if jobs != nil {
		c.cfg["jobs"] = jobs
	}
	if housekeeping != nil {
		c.cfg["housekeeping"] = housekeeping
	}
	return c
}

// newReplica prepares one more replica with its own data directory and
// listen address; it is not started.
func (c *cluster) newReplica(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	cfg := maps.Clone(c.cfg)
	cfg["dataDir"] = dir
	s := newServer(t, cfg, dir)
	s.configure(t)
	c.replicas = append(c.replicas, s)
	return s
}

// startAll starts the replicas at the same moment and waits until each
// answers; one that lost its port to another process is started again.
func startAll(t *testing.T, replicas ...*server) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, s := range replicas {
		wg.Go(func() {
			<-start
			errs[i] = s.start()
		})
	}
	close(start)
	wg.Wait()
	for i, s := range replicas {
		for try := 0; errs[i] != nil && s.portTaken() && try < 2; try++ {
			s.configure(t)
			errs[i] = s.start()
		}
		if errs[i] != nil {
			t.Fatalf("starting replica %d: %v", i, errs[i])
		}
	}
}

var replicaIDPattern = regexp.MustCompile(`msg="certkeeper is serving".* replica_id=(\S+)`)

// replicaID is the name the replica's job queue has in River's tables, from
// the line it logs when it serves.
func (s *server) replicaID(t *testing.T) string {
	t.Helper()
	m := replicaIDPattern.FindSubmatch(s.logText(t))
	if m == nil {
		t.Fatalf("no replica id in the log of %s", s.baseURL)
	}
	return string(m[1])
}

func (s *server) logText(t *testing.T) []byte {
	t.Helper()
	out, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// countLog counts the log lines of the replicas with the message msg.
func countLog(t *testing.T, msg string, replicas ...*server) int {
	t.Helper()
	n := 0
	for _, s := range replicas {
		n += bytes.Count(s.logText(t), []byte(`msg="`+msg+`"`))
	}
	return n
}

// eventually polls cond every 100 ms until it holds, failing the test when
// ctx ends first.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *cluster) queryInt(ctx context.Context, t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := c.db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// leader is the replica id River's leader election chose, or "".
func (c *cluster) leader(ctx context.Context, t *testing.T) string {
	t.Helper()
	var id string
	err := c.db.QueryRowContext(ctx, `SELECT leader_id FROM river_leader WHERE expires_at > now()`).Scan(&id)
	if err != nil && err != sql.ErrNoRows {
		t.Fatalf("reading the leader: %v", err)
	}
	return id
}

// runningJobs maps each replica id to the operations whose jobs it is
// running now.
func (c *cluster) runningJobs(ctx context.Context, t *testing.T) map[string][]string {
	t.Helper()
	rows, err := c.db.QueryContext(ctx, `SELECT attempted_by[array_length(attempted_by, 1)], args->>'operationId'
		FROM river_job WHERE state = 'running' AND kind = 'certkeeper_issue'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var who, op string
		if err := rows.Scan(&who, &op); err != nil {
			t.Fatal(err)
		}
		out[who] = append(out[who], op)
	}
	return out
}

func operationIDOf(t *testing.T, location string) string {
	t.Helper()
	id := location[strings.LastIndex(location, "/")+1:]
	if !operationID.MatchString(id) {
		t.Fatalf("Location %q names no operation", location)
	}
	return id
}

// TestReplicasFailover runs three replicas on one PostgreSQL database, sends
// them 30 issuances, kills with SIGKILL the replica running the most of them
// halfway through, and expects every issuance to complete exactly once —
// one version each, no TXT record left in BIND. Then it kills the leader and
// expects the periodic housekeeping to run on the replica left.
func TestReplicasFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t,
		map[string]any{"workers": 4, "timeout": "2m", "rescueAfter": "4s", "shutdownGrace": "5s"},
		map[string]any{"interval": "2s", "operationRetention": "1h", "jobRetention": "1h"})
	for range 3 {
		c.newReplica(t)
	}
	startAll(t, c.replicas...)
	ids := map[string]*server{}
	for _, s := range c.replicas {
		ids[s.replicaID(t)] = s
	}
	if len(ids) != 3 {
		t.Fatalf("replica ids %v, want 3 distinct", slices.Collect(maps.Keys(ids)))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	const total = 30
	ops := map[string]string{} // operation id → certificate name
	var names []string
	for i := range total {
		srv := c.replicas[i%len(c.replicas)]
		name := fmt.Sprintf("r%02d", i)
		dnsName := name + ".replicas." + zone
		names = append(names, dnsName)
		loc := srv.accepted(t, srv.postJSON(ctx, t, "/api/certificate", c.issuerKey,
			map[string]any{"dnsNames": []string{dnsName}, "certificateName": name}))
		ops[operationIDOf(t, loc)] = name
	}
	submitted := time.Now()

	// Halfway: kill the replica running the most issuances.
	eventually(ctx, t, "half of the issuances to succeed", func() bool {
		return c.queryInt(ctx, t, `SELECT COUNT(*) FROM operations WHERE status = 'succeeded'`) >= total/2
	})
	var victimID string
	var victimOps []string
	eventually(ctx, t, "a replica running issuances", func() bool {
		victimID, victimOps = "", nil
		for who, running := range c.runningJobs(ctx, t) {
			if ids[who] != nil && len(running) > len(victimOps) {
				victimID, victimOps = who, running
			}
		}
		return len(victimOps) > 0
	})
	victim := ids[victimID]
	wasLeader := c.leader(ctx, t) == victimID
	if err := victim.kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	// What it ran when it died (it may have finished or fetched jobs since
	// the look above); nothing changes that until the rescue, rescueAfter
	// later.
	victimOps = c.runningJobs(ctx, t)[victimID]
	if len(victimOps) == 0 {
		t.Fatalf("replica %s finished all its issuances just before it was killed", victimID)
	}
	done := c.queryInt(ctx, t, `SELECT COUNT(*) FROM operations WHERE status = 'succeeded'`)
	t.Logf("killed replica %s (leader: %t) while it ran %d issuances; %d of %d had succeeded, %v after submission",
		victimID, wasLeader, len(victimOps), done, total, killedAt.Sub(submitted).Round(time.Millisecond))

	eventually(ctx, t, "every issuance to end", func() bool {
		return c.queryInt(ctx, t, `SELECT COUNT(*) FROM operations WHERE status IN ('succeeded', 'failed')`) == total
	})
	t.Logf("all %d issuances ended %v after the kill", total, time.Since(killedAt).Round(time.Millisecond))
	// River records a job's completion a moment after its operation ended.
	eventually(ctx, t, "every job to be completed", func() bool {
		return c.queryInt(ctx, t, `SELECT COUNT(*) FROM river_job WHERE kind = 'certkeeper_issue' AND state = 'completed'`) == total
	})

	// Exactly once: every operation succeeded with its own version, one
	// version per certificate.
	rows, err := c.db.QueryContext(ctx, `SELECT o.id, o.status, o.version_id, o.attempt, o.updated_at,
		(SELECT COUNT(*) FROM certificate_versions v WHERE v.certificate_name = o.certificate_name)
		FROM operations o`)
	if err != nil {
		t.Fatal(err)
	}
	var lastRescued time.Time
	seen := 0
	for rows.Next() {
		var id, status, version string
		var attempt, updated, versions int64
		if err := rows.Scan(&id, &status, &version, &attempt, &updated, &versions); err != nil {
			t.Fatal(err)
		}
		seen++
		if ops[id] == "" {
			t.Errorf("unexpected operation %s", id)
			continue
		}
		if status != "succeeded" || version != id || versions != 1 {
			t.Errorf("operation %s (%s): %s, version %q, %d versions of its certificate; want succeeded, its own, 1",
				id, ops[id], status, version, versions)
		}
		if slices.Contains(victimOps, id) {
			// (attempt counts the starts of the runner: a job fetched by the
			// killed replica may not have started it yet.)
			t.Logf("operation %s of the killed replica ran %d time(s)", id, attempt)
			if at := time.UnixMicro(updated); at.After(lastRescued) {
				lastRescued = at
			}
		}
	}
	rows.Close()
	if seen != total {
		t.Errorf("%d operations stored, want %d", seen, total)
	}
	if n := c.queryInt(ctx, t, `SELECT COUNT(*) FROM certificate_versions`); n != total {
		t.Errorf("%d certificate versions stored, want %d", n, total)
	}
	t.Logf("the %d issuances of the killed replica were taken over and finished %v after the kill",
		len(victimOps), lastRescued.Sub(killedAt).Round(time.Millisecond))

	// River rescued jobs from the dead replica only — the claims of the live
	// ones were renewed while their issuances ran — including every one it
	// ran when killed (it may have fetched more just before), and a live
	// replica finished each.
	rows, err = c.db.QueryContext(ctx, `SELECT j.args->>'operationId', j.attempted_by[(e->>'attempt')::int],
		j.attempted_by[array_length(j.attempted_by, 1)], j.state
		FROM river_job j, unnest(j.errors) e
		WHERE j.kind = 'certkeeper_issue' AND e->>'error' LIKE 'Stuck job rescued%'`)
	if err != nil {
		t.Fatal(err)
	}
	rescued := map[string]bool{}
	for rows.Next() {
		var op, stuckOn, lastWorker, state string
		if err := rows.Scan(&op, &stuckOn, &lastWorker, &state); err != nil {
			t.Fatal(err)
		}
		rescued[op] = true
		if stuckOn != victimID {
			t.Errorf("the job of operation %s was rescued from %s, a live replica", op, stuckOn)
		}
		if ids[lastWorker] == nil || lastWorker == victimID || state != "completed" {
			t.Errorf("the job of operation %s was last worked by %s and is %s; want a live replica, completed", op, lastWorker, state)
		}
	}
	rows.Close()
	for _, op := range victimOps {
		if !rescued[op] {
			t.Errorf("the job of operation %s, running on the killed replica, was not rescued", op)
		}
	}
	t.Logf("%d jobs rescued from the killed replica", len(rescued))

	// No TXT record left.
	var left []string
	for _, z := range zones {
		owners, err := c.bind.ChallengeRecords(ctx, z)
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, owners...)
	}
	for _, n := range names {
		if slices.Contains(left, "_acme-challenge."+n+".") {
			t.Errorf("TXT record left in BIND for %s", n)
		}
	}

	// Kill the leader: periodic work moves to the replica left.
	var live []*server
	for id, s := range ids {
		if id != victimID {
			live = append(live, s)
		}
	}
	var leaderID string
	eventually(ctx, t, "a live leader", func() bool {
		leaderID = c.leader(ctx, t)
		return leaderID != "" && leaderID != victimID
	})
	survivor := live[0]
	if survivor == ids[leaderID] {
		survivor = live[1]
	}
	survivorID := survivor.replicaID(t)
	if err := ids[leaderID].kill(); err != nil {
		t.Fatal(err)
	}
	leaderKilledAt := time.Now()
	eventually(ctx, t, "the replica left to be elected", func() bool { return c.leader(ctx, t) == survivorID })
	var electedAt time.Time
	if err := c.db.QueryRowContext(ctx, `SELECT elected_at FROM river_leader`).Scan(&electedAt); err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s killed; %s elected %v later", leaderID, survivorID, time.Since(leaderKilledAt).Round(time.Millisecond))

	// An operation that ended long ago is pruned by housekeeping that the
	// new leader schedules.
	old := strings.Repeat("0", 31) + "1"
	long := time.Now().Add(-48 * time.Hour).UnixMicro()
	if _, err := c.db.ExecContext(ctx, `INSERT INTO operations (id, kind, certificate_name, spec, status, steps, created_at, updated_at)
		VALUES ($1, 'issue', 'ancient', '{}', 'succeeded', '[]', $2, $2)`, old, long); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "housekeeping to prune the old operation", func() bool {
		return c.queryInt(ctx, t, `SELECT COUNT(*) FROM operations WHERE id = $1`, old) == 0
	})
	eventually(ctx, t, "a housekeeping job scheduled by the new leader to complete", func() bool {
		return c.queryInt(ctx, t, `SELECT COUNT(*) FROM river_job WHERE kind = 'certkeeper_housekeeping'
			AND created_at >= $1 AND state = 'completed'`, electedAt) > 0
	})
	t.Logf("housekeeping scheduled by the new leader pruned the old operation %v after the leader was killed",
		time.Since(leaderKilledAt).Round(time.Millisecond))

	// The replica left still issues on its own.
	loc := survivor.accepted(t, survivor.postJSON(ctx, t, "/api/certificate", c.issuerKey,
		map[string]any{"dnsNames": []string{"alone.replicas." + zone}}))
	if r := survivor.wait(ctx, t, loc, c.issuerKey); r.Status != 200 {
		t.Errorf("issuance on the last replica ended with %s", r)
	}
}

// TestReplicasStartTogether starts two replicas at the same moment on an
// empty database: the migrations run once, and one ACME account is
// registered, which both use.
func TestReplicasStartTogether(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, nil)
	a, b := c.newReplica(t), c.newReplica(t)
	startAll(t, a, b)
	ctx := testCtx(t)

	// Each replica loads or registers the account as it starts.
	eventually(ctx, t, "both replicas to have the account", func() bool {
		return countLog(t, "registered ACME account", a, b)+
			countLog(t, "using the ACME account another process registered", a, b)+
			countLog(t, "loaded ACME account", a, b) == 2
	})
	if n := countLog(t, "registered ACME account", a, b); n != 1 {
		t.Errorf("%d replicas registered an ACME account, want 1", n)
	}
	if n := c.queryInt(ctx, t, `SELECT COUNT(*) FROM acme_accounts`); n != 1 {
		t.Errorf("%d ACME accounts stored, want 1", n)
	}

	migrations, err := filepath.Glob(filepath.Join("..", "..", "internal", "store", "migrations", "*.sql"))
	if err != nil || len(migrations) == 0 {
		t.Fatalf("listing migrations: %v", err)
	}
	if n := countLog(t, "applied migration", a, b); n != len(migrations) {
		t.Errorf("%d migrations applied by the two replicas, want each of the %d once", n, len(migrations))
	}
	if n := c.queryInt(ctx, t, `SELECT COUNT(*) FROM schema_migrations`); n != len(migrations) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(migrations))
	}
	if n := countLog(t, "applied job queue migrations", a, b); n != 1 {
		t.Errorf("%d replicas applied the job queue's migrations, want 1", n)
	}

	// Both issue with it.
	for i, s := range []*server{a, b} {
		loc := s.accepted(t, s.postJSON(ctx, t, "/api/certificate", c.issuerKey,
			map[string]any{"dnsNames": []string{fmt.Sprintf("together%d.%s", i, zone)}}))
		if r := s.wait(ctx, t, loc, c.issuerKey); r.Status != 200 {
			t.Errorf("issuance on replica %d ended with %s", i, r)
		}
	}
	if n := c.queryInt(ctx, t, `SELECT COUNT(*) FROM acme_accounts`); n != 1 {
		t.Errorf("%d ACME accounts stored after issuing, want 1", n)
	}
	if n := countLog(t, "registered ACME account", a, b); n != 1 {
		t.Errorf("%d ACME account registrations after issuing, want 1", n)
	}
}
