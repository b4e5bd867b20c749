package metrics

import (
	"context"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/issuer"
)

// SolverSource gives the DNS-01 solver for a certificate's provider and
// alias, as the DNS registry does.
type SolverSource interface {
	Solver(providerName, dnsAlias string) issuer.Solver
}

// Solvers wraps inner so that every Present, Wait and CleanUp is counted per
// provider name (empty, when the provider is chosen by zone, counts as
// "by-zone").
func (m *Metrics) Solvers(inner SolverSource) SolverSource { return &solvers{inner: inner, m: m} }

type solvers struct {
	inner SolverSource
	m     *Metrics
}

func (s *solvers) Solver(providerName, dnsAlias string) issuer.Solver {
	label := providerName
	if label == "" {
		label = "by-zone"
	}
	return &countingSolver{Solver: s.inner.Solver(providerName, dnsAlias), provider: label, m: s.m}
}

type countingSolver struct {
	issuer.Solver
	provider string
	m        *Metrics
}

var _ issuer.Solver = (*countingSolver)(nil)

func (s *countingSolver) Present(ctx context.Context, challenges []issuer.Challenge) error {
	err := s.Solver.Present(ctx, challenges)
	s.m.ObserveDNS(s.provider, "present", err)
	return err
}

func (s *countingSolver) Wait(ctx context.Context, challenges []issuer.Challenge) error {
	err := s.Solver.Wait(ctx, challenges)
	s.m.ObserveDNS(s.provider, "wait", err)
	return err
}

func (s *countingSolver) CleanUp(ctx context.Context, challenges []issuer.Challenge) error {
	err := s.Solver.CleanUp(ctx, challenges)
	s.m.ObserveDNS(s.provider, "cleanup", err)
	return err
}

// Preflight forwards to the wrapped solver when it checks records before
// ordering (issuer.Preflighter), so that counting hides no ability.
func (s *countingSolver) Preflight(ctx context.Context, names []string) error {
	if pf, ok := s.Solver.(issuer.Preflighter); ok {
		return pf.Preflight(ctx, names)
	}
	return nil
}

// caaChecker is the CAA check the job runner looks for on its solver source.
type caaChecker interface {
	CheckCAA(ctx context.Context, names, identities []string, accountURI string) []dns.CAACheck
}

// CheckCAA forwards to the wrapped source when it checks CAA records;
// without one every name is allowed.
func (s *solvers) CheckCAA(ctx context.Context, names, identities []string, accountURI string) []dns.CAACheck {
	if c, ok := s.inner.(caaChecker); ok {
		return c.CheckCAA(ctx, names, identities, accountURI)
	}
	return nil
}
