package issuer

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"

	"github.com/certkeeper/certkeeper/internal/operation"
)

// pendingChallenge is one dns-01 challenge to answer, with where to answer it.
type pendingChallenge struct {
	Challenge
	authzURL     string
	challengeURL string
}

// Obtain issues a certificate for req by DNS-01 (RFC 8555 section 7 and
// 8.4): it creates an order, presents every challenge through solver at
// once, waits for propagation, answers the challenges, finalizes with a CSR
// and downloads the chain. progress is told of each step (it may be nil).
// solver.CleanUp runs on every exit path once Present was called, under a
// context that ctx's cancellation does not reach, with its own 30-second
// timeout. Errors are *ProblemError (possibly joined with a cleanup error).
// Obtain is safe for concurrent use.
func (i *Issuer) Obtain(ctx context.Context, req Request, solver Solver, progress Progress) (*Certificate, error) {
	if progress == nil {
		progress = func(context.Context, operation.Step) {}
	}
	if len(req.Names) == 0 {
		return nil, &ProblemError{Step: operation.StepOrdering, Op: "creating order", Err: errors.New("no DNS names requested")}
	}
	key := req.Key
	if key == nil {
		var err error
		if key, err = GenerateKey(req.KeyType, req.KeySize, req.Curve); err != nil {
			return nil, &ProblemError{Step: operation.StepOrdering, Op: "creating certificate key", Err: err}
		}
	}
	profile := req.Profile
	if profile == "" {
		profile = i.cfg.DefaultProfile
	}
	log := i.log.With("names", req.Names)

	if pf, ok := solver.(Preflighter); ok {
		progress(ctx, operation.StepCheckingDNS)
		if err := pf.Preflight(ctx, req.Names); err != nil {
			return nil, &ProblemError{Step: operation.StepCheckingDNS, Op: "checking DNS before ordering", Err: err}
		}
	}

	progress(ctx, operation.StepOrdering)
	var (
		order    acme.ExtendedOrder
		replaced string
	)
	sess, err := i.withAccount(ctx, func(s *session) error {
		if err := checkProfile(s.core.GetDirectory(), profile); err != nil {
			return err
		}
		var err error
		order, replaced, err = i.newOrder(ctx, s, req, profile, log)
		return err
	})
	if err != nil {
		if pe, ok := errors.AsType[*ProblemError](err); ok {
			if pe.Step == "" {
				pe.Step = operation.StepOrdering
			}
			return nil, err
		}
		return nil, fail(operation.StepOrdering, "creating order for "+strings.Join(req.Names, ", "), err)
	}
	log.DebugContext(ctx, "created order", "order_url", order.Location, "status", order.Status)

	challenges, err := i.pendingChallenges(ctx, sess.core, order.Authorizations)
	if err != nil {
		return nil, err
	}

	if len(challenges) > 0 {
		if err := i.solve(ctx, sess.core, challenges, solver, progress, log); err != nil {
			return nil, err
		}
	}

	progress(ctx, operation.StepFinalizing)
	cert, err := i.finalize(ctx, sess.core, order, req.Names, key, req.PreferredChain)
	if err != nil {
		return nil, err
	}
	cert.AccountURI, cert.Replaced = sess.acct.URI, replaced
	log.InfoContext(ctx, "issued certificate", "serial", cert.Leaf.SerialNumber.Text(16),
		"not_after", cert.Leaf.NotAfter, "certificate_url", cert.URL)
	return cert, nil
}

// newOrder creates the order, announcing req.Replaces when the account
// placing the order issued the replaced certificate. When the CA refuses the
// order with the announcement, it is placed again without it (a CA may not
// know the certificate, or consider it replaced already). It returns the
// ARI identifier of the certificate the order replaces, when announced.
func (i *Issuer) newOrder(ctx context.Context, s *session, req Request, profile string, log *slog.Logger) (acme.ExtendedOrder, string, error) {
	ctx = WithEndpoint(ctx, EndpointNewOrder)
	opts := &api.OrderOptions{Profile: profile}
	if r := req.Replaces; r != nil && r.CertID != "" && s.core.GetDirectory().RenewalInfo != "" {
		if r.AccountURI != "" && r.AccountURI == s.acct.URI {
			opts.ReplacesCertID = r.CertID
		} else {
			log.InfoContext(ctx, "not announcing the replaced certificate: another ACME account issued it",
				"replaces", r.CertID)
		}
	}
	order, err := s.core.Orders.New(ctx, req.Names, opts)
	if err == nil || opts.ReplacesCertID == "" {
		// lego places the order again without replaces when the CA answers
		// alreadyReplaced; the CA reflects replaces in an order it accepted
		// as a replacement (RFC 9773 section 5), so the order tells.
		return order, order.Replaces, err
	}
	if _, ok := errors.AsType[*acme.ProblemDetails](err); !ok || accountMissing(err) {
		return order, "", err
	}
	log.WarnContext(ctx, "the CA refused the order as a replacement; ordering without replaces",
		"replaces", opts.ReplacesCertID, "error", err)
	opts.ReplacesCertID = ""
	order, err = s.core.Orders.New(ctx, req.Names, opts)
	return order, order.Replaces, err
}

// checkProfile fails with a *ProblemError wrapping a *ProfileError when a
// profile is asked for, the directory lists profiles, and the asked one is
// not among them.
func checkProfile(dir acme.Directory, profile string) error {
	if err := CheckProfile(dir, profile); err != nil {
		return &ProblemError{Step: operation.StepOrdering, Op: "choosing ACME profile", Err: err}
	}
	return nil
}

// pendingChallenges fetches every authorization of the order concurrently
// and returns the dns-01 challenges of those not yet valid, in the order of
// the authorizations.
func (i *Issuer) pendingChallenges(ctx context.Context, core *api.Core, authzURLs []string) ([]pendingChallenge, error) {
	results := make([]*pendingChallenge, len(authzURLs))
	errs := make([]error, len(authzURLs))
	var wg sync.WaitGroup
	for n, u := range authzURLs {
		wg.Go(func() {
			results[n], errs[n] = i.pendingChallenge(ctx, core, u)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []pendingChallenge
	for _, r := range results {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

// pendingChallenge returns the dns-01 challenge of one authorization, or nil
// when the authorization is already valid.
func (i *Issuer) pendingChallenge(ctx context.Context, core *api.Core, authzURL string) (*pendingChallenge, error) {
	authz, err := core.Authorizations.Get(WithEndpoint(ctx, EndpointAuthorization), authzURL)
	if err != nil {
		return nil, fail(operation.StepOrdering, "fetching authorization "+authzURL, err)
	}
	name := authzName(authz)
	switch authz.Status {
	case acme.StatusValid:
		return nil, nil
	case acme.StatusPending:
	default:
		return nil, problemFailure(operation.StepOrdering,
			fmt.Sprintf("fetching authorization for %q: status is %s", name, authz.Status),
			name, challengeProblem(authz))
	}
	for _, ch := range authz.Challenges {
		if ch.Type != "dns-01" {
			continue
		}
		keyAuth, err := core.GetKeyAuthorization(ch.Token)
		if err != nil {
			return nil, fail(operation.StepOrdering, fmt.Sprintf("computing key authorization for %q", name), err)
		}
		sum := sha256.Sum256([]byte(keyAuth))
		return &pendingChallenge{
			Challenge: Challenge{
				Domain:   strings.ToLower(strings.TrimPrefix(authz.Identifier.Value, "*.")),
				Wildcard: authz.Wildcard || strings.HasPrefix(authz.Identifier.Value, "*."),
				Value:    base64.RawURLEncoding.EncodeToString(sum[:]),
			},
			authzURL:     authzURL,
			challengeURL: ch.URL,
		}, nil
	}
	types := make([]string, 0, len(authz.Challenges))
	for _, ch := range authz.Challenges {
		types = append(types, ch.Type)
	}
	return nil, &ProblemError{Step: operation.StepOrdering, Op: fmt.Sprintf("choosing challenge for %q", name),
		Identifier: name, Err: fmt.Errorf("the CA offers no dns-01 challenge (offered: %s)", strings.Join(types, ", "))}
}

// authzName is the identifier of authz as it was requested.
func authzName(authz acme.Authorization) string {
	if authz.Wildcard && !strings.HasPrefix(authz.Identifier.Value, "*.") {
		return "*." + authz.Identifier.Value
	}
	return authz.Identifier.Value
}

// challengeProblem returns the error of the first challenge of authz that
// has one.
func challengeProblem(authz acme.Authorization) *acme.ProblemDetails {
	for _, ch := range authz.Challenges {
		if ch.Error != nil {
			return ch.Error
		}
	}
	return nil
}

// solve presents the challenges, waits for propagation and has the CA
// validate them; the records are removed on every exit path.
func (i *Issuer) solve(ctx context.Context, core *api.Core, pending []pendingChallenge,
	solver Solver, progress Progress, log *slog.Logger,
) (err error) {
	challenges := make([]Challenge, len(pending))
	for n, p := range pending {
		challenges[n] = p.Challenge
	}

	progress(ctx, operation.StepPresenting)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		cerr := solver.CleanUp(cctx, challenges)
		if cerr == nil {
			return
		}
		cerr = fmt.Errorf("removing DNS records: %w", cerr)
		if err == nil {
			log.WarnContext(ctx, "removing DNS records after issuance failed", "error", cerr)
			return
		}
		err = errors.Join(err, cerr)
	}()
	if err := solver.Present(ctx, challenges); err != nil {
		return &ProblemError{Step: operation.StepPresenting, Op: "presenting DNS records", Err: err}
	}

	progress(ctx, operation.StepPropagation)
	if err := solver.Wait(ctx, challenges); err != nil {
		return &ProblemError{Step: operation.StepPropagation, Op: "waiting for DNS propagation", Err: err}
	}

	progress(ctx, operation.StepValidating)
	vctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make([]error, len(pending))
	var wg sync.WaitGroup
	for n, p := range pending {
		wg.Go(func() {
			if e := i.validate(vctx, core, p); e != nil {
				errs[n] = e
				cancel(errValidationAborted)
			}
		})
	}
	wg.Wait()
	// Report the CA's verdicts, not the polls stopped because of one.
	aborted := errors.Is(context.Cause(vctx), errValidationAborted) && ctx.Err() == nil
	var failures []error
	for _, e := range errs {
		if e != nil && !(aborted && errors.Is(e, context.Canceled)) && !errors.Is(e, errValidationAborted) {
			failures = append(failures, e)
		}
	}
	if len(failures) == 0 {
		failures = errs
	}
	return errors.Join(failures...)
}

var errValidationAborted = errors.New("another challenge failed")

// validate answers one challenge and polls its authorization until the CA
// decided.
func (i *Issuer) validate(ctx context.Context, core *api.Core, p pendingChallenge) error {
	name := p.Domain
	if p.Wildcard {
		name = "*." + name
	}
	cctx, sink := withRetryAfterSink(ctx, p.challengeURL)
	ch, err := core.Challenges.New(WithEndpoint(cctx, EndpointChallenge), p.challengeURL)
	if err != nil {
		return fail(operation.StepValidating, fmt.Sprintf("answering challenge for %q", name), err)
	}
	if ch.Status == acme.StatusInvalid {
		return problemFailure(operation.StepValidating,
			fmt.Sprintf("validating %q by the TXT record at _acme-challenge.%s", name, p.Domain), name, ch.Error)
	}
	bo := backoff{observe: i.observeWait}
	retryAfter := sink.get()
	for {
		if err := bo.wait(ctx, retryAfter); err != nil {
			return &ProblemError{Step: operation.StepValidating, Op: fmt.Sprintf("waiting for validation of %q", name),
				Identifier: name, Err: err}
		}
		pctx, sink := withRetryAfterSink(ctx, p.authzURL)
		authz, err := core.Authorizations.Get(WithEndpoint(pctx, EndpointAuthorization), p.authzURL)
		if err != nil {
			return fail(operation.StepValidating, fmt.Sprintf("polling authorization for %q", name), err)
		}
		retryAfter = sink.get()
		switch authz.Status {
		case acme.StatusValid:
			return nil
		case acme.StatusPending:
			continue
		default:
			return problemFailure(operation.StepValidating,
				fmt.Sprintf("validating %q by the TXT record at _acme-challenge.%s (authorization %s)", name, p.Domain, authz.Status),
				name, challengeProblem(authz))
		}
	}
}

// finalize sends the CSR, polls the order until the certificate is issued
// and downloads it.
func (i *Issuer) finalize(ctx context.Context, core *api.Core, order acme.ExtendedOrder, names []string, key crypto.Signer, preferredChain string) (*Certificate, error) {
	const step = operation.StepFinalizing
	csr, err := newCSR(names, key)
	if err != nil {
		return nil, &ProblemError{Step: step, Op: "creating CSR", Err: err}
	}
	fctx, sink := withRetryAfterSink(ctx, order.Finalize)
	cur, err := core.Orders.UpdateForCSR(WithEndpoint(fctx, EndpointFinalize), order.Finalize, csr)
	if err != nil {
		return nil, fail(step, "finalizing order "+order.Location, err)
	}
	retryAfter := sink.get()
	bo := backoff{observe: i.observeWait}
	for cur.Status != acme.StatusValid {
		switch cur.Status {
		case acme.StatusInvalid:
			return nil, problemFailure(step, "finalizing order "+order.Location, "", cur.Error)
		case acme.StatusProcessing, acme.StatusReady, acme.StatusPending:
		default:
			return nil, &ProblemError{Step: step, Op: "finalizing order " + order.Location,
				Err: fmt.Errorf("unexpected order status %q", cur.Status)}
		}
		if err := bo.wait(ctx, retryAfter); err != nil {
			return nil, &ProblemError{Step: step, Op: "waiting for order " + order.Location, Err: err}
		}
		pctx, s := withRetryAfterSink(ctx, order.Location)
		cur, err = core.Orders.Get(WithEndpoint(pctx, EndpointOrder), order.Location)
		if err != nil {
			return nil, fail(step, "polling order "+order.Location, err)
		}
		retryAfter = s.get()
	}
	if cur.Certificate == "" {
		return nil, &ProblemError{Step: step, Op: "finalizing order " + order.Location,
			Err: errors.New("the order is valid but has no certificate URL")}
	}
	raw, err := i.download(WithEndpoint(ctx, EndpointCertificate), core, cur.Certificate, preferredChain)
	if err != nil {
		return nil, err
	}
	cert, err := assemble(raw, key)
	if err != nil {
		return nil, &ProblemError{Step: step, Op: "reading certificate " + cur.Certificate, Err: err}
	}
	cert.URL = cur.Certificate
	return cert, nil
}

// newCSR returns a DER CSR with the first name as subject CN and every
// name as a SAN, in order.
func newCSR(names []string, key crypto.Signer) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: names[0]},
		DNSNames: names,
	}, key)
}

// assemble splits the PEM chain the CA sent into leaf and issuers and checks
// that the leaf belongs to key.
func assemble(bundle []byte, key crypto.Signer) (*Certificate, error) {
	var blocks []*pem.Block
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return nil, errors.New("the CA sent no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(blocks[0].Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing leaf certificate: %w", err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := key.Public().(equaler); !ok || !pub.Equal(leaf.PublicKey) {
		return nil, errors.New("the leaf certificate's public key does not match the certificate key")
	}
	var chain []byte
	for _, b := range blocks[1:] {
		chain = append(chain, pem.EncodeToMemory(b)...)
	}
	keyPEM, err := MarshalKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &Certificate{
		Leaf:     leaf,
		CertPEM:  pem.EncodeToMemory(blocks[0]),
		ChainPEM: chain,
		Key:      key,
		KeyPEM:   keyPEM,
	}, nil
}
