package job

import (
	"context"
	"crypto"
	"crypto/sha1" //nolint:gosec // the SHA-1 thumbprint is an identifier Acmebot clients expect, not a security check
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// CAs are the certificate authorities the runner obtains from (see
// failover.go).
type CAs interface {
	// Candidates returns the CAs to try, in order, for a certificate that
	// names names; none means the default CAs.
	Candidates(names []string) ([]CA, error)
	// ForVersion returns the CA that issued a stored version.
	ForVersion(caName, directoryURL string) (CA, error)
}

// CA is one certificate authority as the runner uses it; *issuer.Issuer is
// one.
type CA interface {
	Name() string
	DirectoryURL() string
	Obtain(ctx context.Context, req issuer.Request, solver issuer.Solver, progress issuer.Progress) (*issuer.Certificate, error)
	// CAAIdentities are the domains the CA's CAA records name (RFC 8659).
	CAAIdentities(ctx context.Context) ([]string, error)
	// AccountURI is the ACME account orders are placed with.
	AccountURI(ctx context.Context) (string, error)
	// RevokeCertificate revokes certDER, signed with its own key where the
	// reason asks for it.
	RevokeCertificate(ctx context.Context, certDER []byte, certKey crypto.Signer, reason int) error
}

var _ CA = (*issuer.Issuer)(nil)

// SetOf adapts a set of issuers to CAs.
func SetOf(s *issuer.Set) CAs { return issuerSet{s} }

type issuerSet struct{ set *issuer.Set }

func (s issuerSet) Candidates(names []string) ([]CA, error) {
	list, err := s.set.Candidates(names)
	out := make([]CA, len(list))
	for i, c := range list {
		out[i] = c
	}
	return out, err
}

func (s issuerSet) ForVersion(caName, directoryURL string) (CA, error) {
	c, err := s.set.ForVersion(caName, directoryURL)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Solvers gives the DNS-01 solver for a certificate's provider and alias.
type Solvers interface {
	Solver(providerName, dnsAlias string) issuer.Solver
}

// Vault is where issued versions go.
type Vault interface {
	Put(ctx context.Context, v vault.Version) error
	Latest(ctx context.Context, name string) (vault.Version, error)
}

// Runner carries an operation from pending to succeeded or failed. It is safe
// for concurrent use; each operation runs in one goroutine at a time.
type Runner struct {
	store   *store.Store
	cas     CAs
	solvers Solvers
	vault   Vault
	logger  *slog.Logger
	hooks   Hooks
	// deliveries, when set, delivers stored versions to destinations.
	deliveries *Deliveries
}

// Finished is an operation that ended.
type Finished struct {
	// Op is the operation as recorded: succeeded or failed.
	Op   operation.Operation
	Spec certificate.Spec
	// Duration is how long this attempt of the operation ran.
	Duration time.Duration
	// Revoked is the version the operation revoked (a replace operation's
	// replaced version), or nil.
	Revoked *vault.Version
}

// Hooks are told about operations as they end: renewal schedules and
// webhooks (Ended), metrics and the audit trail (Observe). Either may be nil.
type Hooks struct {
	// Ended runs inside the transaction that records the end of the
	// operation, so what it writes with tx is kept exactly when the end is.
	// It must use tx, never the Store's own pools. An error rolls both back
	// and the job is tried again.
	Ended func(ctx context.Context, tx *sql.Tx, f Finished) error
	// Observe is told once the end is recorded. It must not block for long.
	Observe func(ctx context.Context, f Finished)
}

// SetHooks installs hooks; call it before the queue starts.
func (r *Runner) SetHooks(h Hooks) { r.hooks = h }

// NewRunner returns a Runner.
// When solvers also implements CAAChecker, the CAA records are checked
// against each CA before it is asked.
func NewRunner(st *store.Store, cas CAs, solvers Solvers, v Vault, logger *slog.Logger) *Runner {
	return &Runner{store: st, cas: cas, solvers: solvers, vault: v, logger: logger.With("component", "runner")}
}

// writeTimeout bounds the database writes that record an operation's state,
// which run even after the job's context ended.
const writeTimeout = 15 * time.Second

// Run works the operation with id. A failure of the issuance itself is
// recorded on the operation and Run returns nil; Run returns an error only
// when the operation should be tried again later: its state could not be
// recorded, or the process is shutting down.
func (r *Runner) Run(ctx context.Context, id string) error {
	logger := r.logger.With("operation_id", id)
	op, err := r.store.Operation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		logger.ErrorContext(ctx, "job for an unknown operation; dropping it")
		return nil
	}
	if err != nil {
		return err
	}
	if op.Status.Done() {
		return nil
	}
	spec, err := r.store.OperationSpec(ctx, id)
	if err != nil {
		return err
	}
	logger = logger.With("certificate", spec.Name)
	t := &tracker{store: r.store, op: op, logger: logger, hooks: r.hooks, spec: spec, started: time.Now()}
	t.op.Status = operation.StatusRunning
	t.op.Attempt++
	if err := t.save(ctx); err != nil {
		return err
	}
	// An attempt handed back (an error) must not write its steps after a
	// later attempt began.
	defer t.stop()
	if t.op.Attempt > 1 {
		logger.InfoContext(ctx, "resuming operation", "attempt", t.op.Attempt)
	}
	solver := &recordingSolver{Solver: r.solvers.Solver(spec.DNSProviderName, spec.DNSAlias), store: r.store, opID: id}
	if err := solver.removeLeftovers(ctx); err != nil {
		logger.WarnContext(ctx, "removing DNS records left by an earlier attempt", "error", err)
	}

	// A previous attempt may have stored the version and died before it
	// recorded success: the version id is the operation id.
	if _, err := r.store.VersionByID(ctx, id); err == nil {
		if failed, err := r.revokeReplaced(ctx, t); failed || err != nil {
			return err
		}
		return r.deliverAndSucceed(ctx, t, id, spec)
	}

	req := issuer.Request{
		Names: spec.DNSNames, KeyType: spec.KeyType, KeySize: spec.KeySize, Curve: spec.KeyCurveName,
		Profile: spec.Profile, PreferredChain: spec.PreferredChain,
	}
	reuse := spec.ReuseKey && op.Kind != operation.KindReplace // a replacement always gets a new key
	if reuse || op.Kind == operation.KindRenew {
		if prev, err := r.vault.Latest(ctx, spec.Name); err == nil {
			if reuse {
				key, err := issuer.ParseKeyPEM(prev.KeyPEM)
				if err != nil {
					return t.fail(ctx, operation.StepOrdering, fmt.Errorf("reading the key to reuse: %w", err))
				}
				req.Key = key
			}
			if op.Kind == operation.KindRenew {
				req.Replaces = replacementOf(prev)
			}
		} else if !errors.Is(err, vault.ErrNotFound) {
			return err
		}
	}

	cert, ca, err := r.obtain(ctx, spec, req, solver, t)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// Shutting down: leave the operation running; the job is worked
			// again on the next start (or by another replica).
			return fmt.Errorf("operation %s interrupted: %w", id, ctx.Err())
		}
		if re, ok := errors.AsType[*recordError](err); ok && store.Unavailable(re.err) {
			// The operation's own state could not be written because the
			// database is restarting or out of reach: not a failure of the
			// issuance. The job is tried again and resumes the operation.
			logger.WarnContext(ctx, "the database is out of reach; the operation is tried again", "error", err)
			return fmt.Errorf("operation %s: %w", id, err)
		}
		step := t.current()
		if pe := (*issuer.ProblemError)(nil); errors.As(err, &pe) && pe.Step != "" {
			step = pe.Step
		}
		return t.fail(ctx, step, err)
	}

	t.enter(ctx, operation.StepStoring)
	v := versionOf(id, spec, ca.Name(), ca.DirectoryURL(), cert)
	// The certificate is issued: a database restarting under the built-in
	// vault must not throw it away, so the write is tried again while the
	// database is out of reach, for a while.
	err = whileUnavailable(ctx, storeRetryFor, func() error { return r.vault.Put(ctx, v) })
	if err != nil && !errors.Is(err, vault.ErrExists) {
		return t.fail(ctx, operation.StepStoring, err)
	}
	logger.InfoContext(ctx, "certificate issued", "serial", v.Serial, "not_after", v.NotAfter, "ca", ca.Name(),
		"replaces", v.Replaces)
	if failed, err := r.revokeReplaced(ctx, t); failed || err != nil {
		return err
	}
	return r.deliverAndSucceed(ctx, t, id, spec)
}

// replacementOf names the version a renewal replaces (RFC 9773 section 5),
// or nil when its ARI identifier cannot be computed.
func replacementOf(prev vault.Version) *issuer.Replacement {
	block, _ := pem.Decode(prev.CertPEM)
	if block == nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	id, err := issuer.ARICertID(leaf)
	if err != nil {
		return nil
	}
	return &issuer.Replacement{CertID: id, AccountURI: prev.AccountURI}
}

func versionOf(id string, spec certificate.Spec, caName, endpoint string, c *issuer.Certificate) vault.Version {
	sum := sha1.Sum(c.Leaf.Raw) //nolint:gosec // see import
	return vault.Version{
		ID: id, Name: spec.Name, Spec: spec, ACMEEndpoint: endpoint, CA: caName,
		Serial:     c.Leaf.SerialNumber.Text(16),
		Thumbprint: strings.ToUpper(hex.EncodeToString(sum[:])),
		NotBefore:  c.Leaf.NotBefore.UTC(), NotAfter: c.Leaf.NotAfter.UTC(),
		CertPEM: c.CertPEM, ChainPEM: c.ChainPEM, KeyPEM: c.KeyPEM, CertURL: c.URL,
		CreatedAt: time.Now().UTC(), AccountURI: c.AccountURI, Replaces: c.Replaced,
	}
}

// tracker records an operation's steps as the flow enters them.
type tracker struct {
	mu      sync.Mutex
	store   *store.Store
	op      operation.Operation
	logger  *slog.Logger
	hooks   Hooks
	spec    certificate.Spec
	started time.Time
	// ca is the name of the CA the steps now concern.
	ca string
	// revoked is the version a replace operation revoked.
	revoked *vault.Version
	// lastSave is when the operation was last written; stepSave is the
	// write of steps entered since, when it waits (see enter); ended is
	// set once done began, after which no step write may run.
	lastSave time.Time
	stepSave *time.Timer
	ended    bool
}

// stepSaveInterval is the least time between two writes of an operation for
// entering steps: a step entered sooner is written with the next write, at
// the latest after the rest of the interval. With SQLite's single writer,
// a write per step was most of an issuance's ~15 writes, and 20 issuances
// at once queued for the writer (issue 11's 200-certificate run). The
// steps are a record for people; what a resumed operation needs (its
// status, its attempt, the challenges it presented) is written at once.
const stepSaveInterval = 100 * time.Millisecond

// done records the end of the operation, with hooks.Ended in the same
// transaction, and tells hooks.Observe.
func (t *tracker) done(ctx context.Context) error {
	t.end() // t.mu is held
	if t.hooks.Ended == nil {
		if err := t.save(ctx); err != nil {
			return err
		}
	} else {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		defer cancel()
		f := Finished{Op: t.op, Spec: t.spec, Duration: time.Since(t.started), Revoked: t.revoked}
		err := t.store.Tx(wctx, func(tx *sql.Tx) error {
			if err := t.store.UpdateOperation(wctx, tx, t.op); err != nil {
				return err
			}
			return t.hooks.Ended(wctx, tx, f)
		})
		if err != nil {
			return err
		}
	}
	if t.hooks.Observe != nil {
		t.hooks.Observe(context.WithoutCancel(ctx), Finished{Op: t.op, Spec: t.spec, Duration: time.Since(t.started), Revoked: t.revoked})
	}
	return nil
}

// save writes the operation; t.mu is held or t not yet shared.
func (t *tracker) save(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	t.lastSave = time.Now()
	return t.store.UpdateOperation(ctx, t.store.DB(), t.op)
}

// stop cancels a waiting step write for good.
func (t *tracker) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.end()
}

// end cancels a waiting step write and lets no other start; t.mu is held.
func (t *tracker) end() {
	t.ended = true
	if t.stepSave != nil {
		t.stepSave.Stop()
		t.stepSave = nil
	}
}

// saveSteps writes the steps now, or within stepSaveInterval of the last
// write; t.mu is held.
func (t *tracker) saveSteps(ctx context.Context, step operation.Step) {
	wait := stepSaveInterval - time.Since(t.lastSave)
	if wait <= 0 {
		if err := t.save(ctx); err != nil {
			t.logger.WarnContext(ctx, "recording operation step", "step", step, "error", err)
		}
		return
	}
	if t.stepSave != nil {
		return // the waiting write takes this step along
	}
	ctx = context.WithoutCancel(ctx)
	t.stepSave = time.AfterFunc(wait, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.ended {
			return
		}
		t.stepSave = nil
		if err := t.save(ctx); err != nil {
			t.logger.WarnContext(ctx, "recording operation steps", "error", err)
		}
	})
}

// enter implements issuer.Progress: it closes the current step and opens step.
func (t *tracker) enter(ctx context.Context, step operation.Step) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now().UTC()
	if n := len(t.op.Steps); n > 0 && t.op.Steps[n-1].FinishedAt == nil {
		t.op.Steps[n-1].FinishedAt = &now
	}
	t.op.Steps = append(t.op.Steps, operation.StepRecord{Name: step, StartedAt: now, CA: t.ca})
	t.logger.DebugContext(ctx, "operation step", "step", step)
	t.saveSteps(ctx, step)
}

func (t *tracker) current() operation.Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.op.Steps); n > 0 {
		return t.op.Steps[n-1].Name
	}
	return operation.StepOrdering
}

func (t *tracker) finishLast(now time.Time, errText string) {
	if n := len(t.op.Steps); n > 0 && t.op.Steps[n-1].FinishedAt == nil {
		t.op.Steps[n-1].FinishedAt = &now
		t.op.Steps[n-1].Error = errText
	}
}

func (t *tracker) fail(ctx context.Context, step operation.Step, cause error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	text := operation.StepError(step, cause)
	t.finishLast(time.Now().UTC(), text)
	t.op.Status, t.op.FailedStep, t.op.Error = operation.StatusFailed, step, text
	t.logger.WarnContext(ctx, "operation failed", "step", step, "error", cause)
	return t.done(ctx)
}

func (t *tracker) succeed(ctx context.Context, versionID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finishLast(time.Now().UTC(), "")
	t.op.Status, t.op.VersionID = operation.StatusSucceeded, versionID
	return t.done(ctx)
}

// recordingSolver writes down the challenges it presents before presenting
// them, and forgets them once they are removed, so that a process taking the
// operation over after a crash can remove what the dead one left.
type recordingSolver struct {
	issuer.Solver
	store *store.Store
	opID  string
}

func (s *recordingSolver) Present(ctx context.Context, challenges []issuer.Challenge) error {
	raw, err := json.Marshal(challenges)
	if err != nil {
		return fmt.Errorf("encoding challenges: %w", err)
	}
	if err := s.store.SetPendingChallenges(ctx, s.opID, raw); err != nil {
		return &recordError{err}
	}
	return s.Solver.Present(ctx, challenges)
}

// Preflight forwards to the wrapped solver when it implements
// issuer.Preflighter.
func (s *recordingSolver) Preflight(ctx context.Context, names []string) error {
	if pf, ok := s.Solver.(issuer.Preflighter); ok {
		return pf.Preflight(ctx, names)
	}
	return nil
}

func (s *recordingSolver) CleanUp(ctx context.Context, challenges []issuer.Challenge) error {
	if err := s.Solver.CleanUp(ctx, challenges); err != nil {
		return err
	}
	// The records are gone: forgetting them must outlast a database restart,
	// or a later attempt would try to remove them again.
	return whileUnavailable(ctx, storeRetryFor, func() error { return s.store.SetPendingChallenges(ctx, s.opID, nil) })
}

func (s *recordingSolver) removeLeftovers(ctx context.Context) error {
	raw, err := s.store.PendingChallenges(ctx, s.opID)
	if err != nil || len(raw) == 0 {
		return err
	}
	var challenges []issuer.Challenge
	if err := json.Unmarshal(raw, &challenges); err != nil {
		return fmt.Errorf("decoding pending challenges: %w", err)
	}
	return s.CleanUp(ctx, challenges)
}

// recordError is a failure to record an operation's state in the database
// in the middle of its flow (the challenges about to be presented). When
// the database is merely out of reach (store.Unavailable), Run hands the
// job back to be tried again rather than failing the operation.
type recordError struct{ err error }

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// storeRetryFor bounds how long whileUnavailable keeps trying.
const storeRetryFor = 30 * time.Second

// whileUnavailable runs f, and runs it again — after 250 ms, doubling to
// 4 s — while it fails with store.Unavailable (the database restarting or
// out of reach), for at most limit or until ctx ends. It returns f's last
// error.
func whileUnavailable(ctx context.Context, limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	wait := 250 * time.Millisecond
	for {
		err := f()
		if err == nil || !store.Unavailable(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 4*time.Second)
	}
}
