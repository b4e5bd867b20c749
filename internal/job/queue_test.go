package job_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/job"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// heldIssuer is a CA whose issuances run until the test releases them or
// their context ends. It tells which operations started and why a
// cancelled one was cancelled.
type heldIssuer struct {
	started chan string
	release chan struct{}

	mu     sync.Mutex
	causes []error
}

var _ job.CA = (*heldIssuer)(nil)

func (h *heldIssuer) Name() string { return "held" }

func (h *heldIssuer) CAAIdentities(context.Context) ([]string, error) { return nil, nil }

func (h *heldIssuer) AccountURI(context.Context) (string, error) {
	return "https://ca.test/acct/1", nil
}

func (h *heldIssuer) RevokeCertificate(context.Context, []byte, crypto.Signer, int) error {
	return errors.New("the held CA does not revoke")
}

// Candidates and ForVersion make the held issuer the only CA (job.CAs).
func (h *heldIssuer) Candidates([]string) ([]job.CA, error) { return []job.CA{h}, nil }

func (h *heldIssuer) ForVersion(string, string) (job.CA, error) { return h, nil }

func newHeldIssuer() *heldIssuer {
	return &heldIssuer{started: make(chan string, 16), release: make(chan struct{})}
}

func (h *heldIssuer) DirectoryURL() string { return "https://ca.test/directory" }

func (h *heldIssuer) Obtain(ctx context.Context, req issuer.Request, _ issuer.Solver, progress issuer.Progress) (*issuer.Certificate, error) {
	progress(ctx, operation.StepOrdering)
	h.started <- req.Names[0]
	select {
	case <-h.release:
		return selfSigned(req.Names)
	case <-ctx.Done():
		h.mu.Lock()
		h.causes = append(h.causes, context.Cause(ctx))
		h.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (h *heldIssuer) cancelCauses() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.causes...)
}

func selfSigned(names []string) (*issuer.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &issuer.Certificate{
		Leaf: leaf, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key: key, KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		URL: "https://ca.test/cert/" + serial.Text(16),
	}, nil
}

type noSolvers struct{}

func (noSolvers) Solver(string, string) issuer.Solver { return nil }

// replica is one job queue on a store, as one certkeeper process has.
type replica struct {
	store  *store.Store
	queue  *job.Queue
	issuer *heldIssuer
}

func startReplica(t *testing.T, st *store.Store, key *secret.Key, rescueAfter time.Duration) *replica {
	t.Helper()
	iss := newHeldIssuer()
	return &replica{store: st, queue: startQueue(t, st, key, iss, rescueAfter), issuer: iss}
}

// startQueue starts a job queue on st whose issuances go to cas, stopped at
// the end of the test.
func startQueue(t *testing.T, st *store.Store, key *secret.Key, cas job.CAs, rescueAfter time.Duration) *job.Queue {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	runner := job.NewRunner(st, cas, noSolvers{}, vault.NewBuiltin(st, key), logger)
	q, err := job.New(t.Context(), job.Options{
		Store: st, Runner: runner, Workers: 4, Timeout: time.Minute, RescueAfter: rescueAfter,
		Housekeeping: job.Housekeeping{Interval: time.Hour, OperationRetention: time.Hour, JobRetention: time.Hour},
		Logger:       logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return q
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func eachDatabase(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			if db == "sqlite" {
				fn(t, filepath.Join(t.TempDir(), "certkeeper.db"))
				return
			}
			fn(t, testenv.PostgresURL(t))
		})
	}
}

func spec(name string) certificate.Spec {
	return certificate.Spec{Name: name, DNSNames: []string{name + ".example.test"}, KeyType: "EC", KeyCurveName: "P-256"}
}

// patience bounds every wait of these tests: far longer than any of them
// takes, it only turns a hang into a failure.
const patience = 2 * time.Minute

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(patience)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("waited %v for %s", patience, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// started waits until the replica's issuer starts an issuance.
func (r *replica) started(t *testing.T) {
	t.Helper()
	select {
	case <-r.issuer.started:
	case <-time.After(patience):
		t.Fatalf("waited %v for an issuance to start", patience)
	}
}

func operationStatus(t *testing.T, st *store.Store, id string) operation.Operation {
	t.Helper()
	op, err := st.Operation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// TestStopHandsJobsBack stops a replica while it works an operation: the
// job goes back to the queue at once, without an error or a used attempt,
// and the next replica (or the same database's next process) finishes it.
func TestStopHandsJobsBack(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		key, _, err := secret.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		first := openStore(t, dsn)
		a := startReplica(t, first, key, 4*time.Second)
		id, err := a.queue.Enqueue(t.Context(), operation.KindIssue, spec("handback"))
		if err != nil {
			t.Fatal(err)
		}
		a.started(t)

		stopCtx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond) // a short grace period
		err = a.queue.Stop(stopCtx)
		cancel()
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if op := operationStatus(t, first, id); op.Status != operation.StatusRunning {
			t.Errorf("operation after stop is %s, want running (to be continued)", op.Status)
		}
		var state string
		var attempt int
		var errs sql.NullString
		if err := first.DB().QueryRowContext(t.Context(), `SELECT state, attempt, errors FROM river_job WHERE kind = 'certkeeper_issue'`).
			Scan(&state, &attempt, &errs); err != nil {
			t.Fatal(err)
		}
		if state != "available" || attempt != 0 || (errs.Valid && errs.String != "[]" && errs.String != "{}") {
			t.Errorf("job after stop: state %s, attempt %d, errors %v; want available, 0, none", state, attempt, errs.String)
		}

		// The next replica: another process on PostgreSQL, the same
		// database's next process on SQLite.
		next := first
		if store.IsPostgresURL(dsn) {
			next = openStore(t, dsn)
		}
		b := startReplica(t, next, key, 4*time.Second)
		b.started(t)
		close(b.issuer.release)
		waitFor(t, "the operation to succeed on the next replica", func() bool {
			return operationStatus(t, next, id).Status == operation.StatusSucceeded
		})
		if op := operationStatus(t, next, id); op.Attempt != 2 || op.VersionID != id {
			t.Errorf("operation: attempt %d, version %q; want 2, %q", op.Attempt, op.VersionID, id)
		}
	})
}

// TestRunningJobsAreRenewed checks the claim a replica keeps on the jobs it
// runs: River's attempted_at moves forward, so that the rescuer leaves a
// live replica's long issuance alone; and when another replica took the job
// over, the first stops working it.
func TestRunningJobsAreRenewed(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	key, _, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dsn)
	a := startReplica(t, st, key, 2*time.Second) // renewed every 500 ms
	id, err := a.queue.Enqueue(t.Context(), operation.KindIssue, spec("renewed"))
	if err != nil {
		t.Fatal(err)
	}
	a.started(t)
	attemptedAt := func() time.Time {
		var at time.Time
		if err := st.DB().QueryRowContext(t.Context(), `SELECT attempted_at FROM river_job WHERE kind = 'certkeeper_issue'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	first := attemptedAt()
	waitFor(t, "attempted_at to be renewed", func() bool { return attemptedAt().After(first) })
	var leaseExpiry int64
	if err := st.DB().QueryRowContext(t.Context(), `SELECT expires_at FROM certificate_leases WHERE operation_id = $1`, id).
		Scan(&leaseExpiry); err != nil {
		t.Fatalf("reading the lease: %v", err)
	}

	// Another replica takes the job over (as River's rescuer and a fetch
	// would): the next renewal finds it, and the first replica stops.
	if _, err := st.DB().ExecContext(t.Context(), `UPDATE river_job SET attempt = attempt + 1 WHERE kind = 'certkeeper_issue'`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first replica to stop working the job", func() bool { return len(a.issuer.cancelCauses()) > 0 })
	if cause := a.issuer.cancelCauses()[0]; cause == nil || !strings.Contains(cause.Error(), "taken over by another replica") {
		t.Errorf("the issuance was cancelled with %v, want the claim being lost", cause)
	}
	if op := operationStatus(t, st, id); op.Status.Done() {
		t.Errorf("operation is %s; the replica that lost it must not finish it", op.Status)
	}
}

// TestRescueOnStart checks that a job a dead replica left running is taken
// over: on PostgreSQL by River's rescuer once rescueAfter passed without a
// renewal, on SQLite at start.
func TestRescueOnStart(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		key, _, err := secret.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		st := openStore(t, dsn)
		a := startReplica(t, st, key, 2*time.Second)
		id, err := a.queue.Enqueue(t.Context(), operation.KindIssue, spec("rescued"))
		if err != nil {
			t.Fatal(err)
		}
		a.started(t)
		// The replica dies: its renewals stop, its job stays running.
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_ = a.queue.Stop(ctx)
		cancel()
		left := `UPDATE river_job SET state = 'running', attempt = 1 WHERE kind = 'certkeeper_issue'`
		var args []any
		if store.IsPostgresURL(dsn) {
			// Its last renewal was long ago.
			left = `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = $1 WHERE kind = 'certkeeper_issue'`
			args = append(args, time.Now().Add(-time.Hour))
		}
		if _, err := st.DB().ExecContext(t.Context(), left, args...); err != nil {
			t.Fatal(err)
		}
		next := st
		if store.IsPostgresURL(dsn) {
			next = openStore(t, dsn)
		}
		b := startReplica(t, next, key, 2*time.Second)
		b.started(t)
		close(b.issuer.release)
		waitFor(t, "the rescued operation to succeed", func() bool {
			return operationStatus(t, next, id).Status == operation.StatusSucceeded
		})
	})
}
