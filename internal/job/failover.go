package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/operation"
)

// CAAChecker checks the CAA records of names against a CA (RFC 8659). The
// runner uses it when its Solvers implements it.
type CAAChecker interface {
	// CheckCAA returns one verdict per name for a CA with identities (its
	// caaIdentities) and account URI (empty when unknown).
	CheckCAA(ctx context.Context, names, identities []string, accountURI string) []dns.CAACheck
}

var (
	_ CAAChecker = (*dns.Registry)(nil)
)

// obtain issues the certificate at the spec's CAs in order (the default CAs
// when it names none). Before each CA is asked, the names' CAA records are
// checked against it. When a CA fails in a way another CA could fix — it is
// unreachable, answers 5xx, rate-limits, refuses the names, does not offer
// the profile, or CAA forbids it — the failure is recorded as a
// StepFailover step naming the CA and why, and the next CA is tried. It
// returns the certificate and the CA that issued it.
func (r *Runner) obtain(ctx context.Context, spec certificate.Spec, req issuer.Request, solver issuer.Solver, t *tracker) (*issuer.Certificate, CA, error) {
	cands, err := r.cas.Candidates(spec.CA)
	if err != nil {
		return nil, nil, &issuer.ProblemError{Step: operation.StepOrdering, Op: "choosing the CA", Err: err}
	}
	for n, ca := range cands {
		last := n == len(cands)-1
		t.useCA(ca.Name())
		err := r.checkCAA(ctx, ca, spec.DNSNames, t)
		var cert *issuer.Certificate
		if err == nil {
			cert, err = ca.Obtain(ctx, req, solver, t.enter)
		}
		if err == nil {
			return cert, ca, nil
		}
		reason := issuer.FailoverReason(err)
		if _, ok := errors.AsType[*recordError](err); ok {
			reason = "" // certkeeper's database, not the CA: no other CA would do better
		}
		if _, ok := errors.AsType[*dns.CAAError](err); ok {
			reason = "CAA forbids issuance"
		}
		if reason == "" || last || ctx.Err() != nil {
			if len(cands) > 1 {
				err = fmt.Errorf("CA %s: %w", ca.Name(), err)
			}
			return nil, nil, err
		}
		t.failover(ctx, ca.Name(), cands[n+1].Name(), reason, err)
	}
	return nil, nil, &issuer.ProblemError{Step: operation.StepOrdering, Op: "choosing the CA", Err: fmt.Errorf("no CA to try")}
}

// checkCAA checks the CAA records of names against ca when the solvers can.
// A lookup that fails, or a CA whose identities cannot be read, is logged
// and leaves the decision to the CA's own check.
func (r *Runner) checkCAA(ctx context.Context, ca CA, names []string, t *tracker) error {
	checker, ok := r.solvers.(CAAChecker)
	if !ok {
		return nil
	}
	t.enter(ctx, operation.StepCAA)
	ids, err := ca.CAAIdentities(ctx)
	if err != nil {
		t.logger.DebugContext(ctx, "not checking CAA: the CA's directory cannot be read", "ca", ca.Name(), "error", err)
		return nil
	}
	uri, err := ca.AccountURI(ctx)
	if err != nil {
		uri = "" // Obtain reports why; records with accounturi count as not matching
	}
	checks := checker.CheckCAA(ctx, names, ids, uri)
	for _, c := range checks {
		if c.Err != nil {
			t.logger.WarnContext(ctx, "CAA records could not be checked; the CA's own check decides", "ca", ca.Name(),
				"name", c.Name, "error", c.Err)
		}
	}
	if err := dns.CAAForbidden(ca.Name(), checks); err != nil {
		return &issuer.ProblemError{Step: operation.StepCAA, Op: "checking CAA records", Err: err}
	}
	return nil
}

// useCA makes the steps entered from now on concern the CA called name.
func (t *tracker) useCA(name string) {
	t.mu.Lock()
	t.ca = name
	t.mu.Unlock()
}

// failover closes the current step with cause and records a StepFailover
// step: the CA given up, why, and the CA tried next.
func (t *tracker) failover(ctx context.Context, from, to, reason string, cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now().UTC()
	t.finishLast(now, cause.Error())
	t.op.Steps = append(t.op.Steps, operation.StepRecord{
		Name: operation.StepFailover, StartedAt: now, FinishedAt: &now, CA: from,
		Error: fmt.Sprintf("CA %s %s; trying CA %s", from, reason, to),
	})
	t.logger.WarnContext(ctx, "CA failed; trying the next one", "ca", from, "next_ca", to, "reason", reason, "error", cause)
	if err := t.save(ctx); err != nil {
		t.logger.WarnContext(ctx, "recording the failover", "error", err)
	}
}
