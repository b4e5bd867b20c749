package dns

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/issuer"
)

// cleanupTimeout bounds CleanUp, which runs even when its context is
// cancelled so that a cancelled job still removes its records.
const cleanupTimeout = 2 * time.Minute

// Solver returns an issuer.Solver that writes challenge records through the
// registry's providers. With providerName set only that provider's zones are
// used. With dnsAlias set, every challenge is written at
// _acme-challenge.<dnsAlias>. (the target of the CNAMEs that delegate
// _acme-challenge.<name>); else at _acme-challenge.<domain>. or, with
// Options.FollowCNAMEs, at the end of its CNAME chain. Challenges that share
// a record name (an apex and its wildcard, or names delegated to one alias)
// form one RRset with several values.
//
// The solver keeps no state between calls but the CNAME answers it found:
// CleanUp given the same challenges removes the records in any process, and
// is safe to repeat. The solver also implements Preflight, which the issuer
// calls before it places the order.
func (r *Registry) Solver(providerName, dnsAlias string) issuer.Solver {
	return &solver{r: r, providerName: providerName, alias: normalize(dnsAlias), targets: make(map[string]Target)}
}

type solver struct {
	r            *Registry
	providerName string
	alias        string

	mu      sync.Mutex
	targets map[string]Target // by normalized domain
}

var (
	_ issuer.Solver      = (*solver)(nil)
	_ issuer.Preflighter = (*solver)(nil)
)

// Preflight implements issuer.Preflighter with Registry.Preflight.
func (s *solver) Preflight(ctx context.Context, names []string) error {
	return s.r.Preflight(ctx, names, s.providerName, s.alias)
}

// rrset is the TXT RRset at one record name and the provider that writes it.
type rrset struct {
	fqdn   string // lowercase, with a trailing dot
	values []string
	named  Named
	zone   string
}

// target returns where the record of domain goes, remembering the answer.
func (s *solver) target(ctx context.Context, domain string) (Target, error) {
	key := normalize(domain)
	s.mu.Lock()
	t, ok := s.targets[key]
	s.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := s.r.target(ctx, key, s.providerName, s.alias)
	if err != nil {
		return t, err
	}
	if len(t.Chain) > 1 {
		s.r.logger.InfoContext(ctx, "following CNAME for challenge record", "chain", strings.Join(t.Chain, " → "))
	}
	s.mu.Lock()
	s.targets[key] = t
	s.mu.Unlock()
	return t, nil
}

// group turns challenges into RRsets, sorted by name, each with its zone.
func (s *solver) group(ctx context.Context, challenges []issuer.Challenge) ([]rrset, error) {
	byName := make(map[string]*rrset)
	var order []string
	var missing []string
	var errs []error
	for _, ch := range challenges {
		t, err := s.target(ctx, ch.Domain)
		var nz *NoZoneError
		switch {
		case errors.As(err, &nz) && t.Record == ChallengeName(ch.Domain):
			if !slices.Contains(missing, t.Record) {
				missing = append(missing, t.Record)
			}
			continue
		case err != nil:
			if !slices.ContainsFunc(errs, func(e error) bool { return e.Error() == err.Error() }) {
				errs = append(errs, err)
			}
			continue
		}
		set, ok := byName[t.Record]
		if !ok {
			named, _ := s.r.provider(t.Provider)
			set = &rrset{fqdn: t.Record, named: named, zone: t.Zone}
			byName[t.Record] = set
			order = append(order, t.Record)
		}
		if !slices.Contains(set.values, ch.Value) {
			set.values = append(set.values, ch.Value)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		errs = append([]error{&NoZoneError{Names: missing}}, errs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("choosing DNS zones for challenge records: %w", err)
	}
	slices.Sort(order)
	sets := make([]rrset, 0, len(order))
	for _, fqdn := range order {
		sets = append(sets, *byName[fqdn])
	}
	return sets, nil
}

// Present writes every RRset through its zone's provider, RRsets
// concurrently. Every RRset is attempted; the errors are joined.
func (s *solver) Present(ctx context.Context, challenges []issuer.Challenge) error {
	sets, err := s.group(ctx, challenges)
	if err != nil {
		return err
	}
	return eachSet(sets, func(set rrset) error {
		start := time.Now()
		if err := set.named.Provider.Present(ctx, set.zone, set.fqdn, set.values); err != nil {
			return fmt.Errorf("presenting TXT %s through DNS provider %q: %w", set.fqdn, set.named.Name, err)
		}
		s.r.logger.InfoContext(ctx, "presented TXT records", "fqdn", set.fqdn, "zone", set.zone,
			"provider", set.named.Name, "values", len(set.values), "duration", time.Since(start))
		return nil
	})
}

// CleanUp removes the challenges' values from their RRsets. It runs under
// context.WithoutCancel(ctx) bounded by two minutes, so records are removed
// even when ctx is already cancelled. Every RRset is attempted; the errors
// are joined.
func (s *solver) CleanUp(ctx context.Context, challenges []issuer.Challenge) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	sets, err := s.group(ctx, challenges)
	if err != nil {
		return err
	}
	return eachSet(sets, func(set rrset) error {
		if err := set.named.Provider.CleanUp(ctx, set.zone, set.fqdn, set.values); err != nil {
			return fmt.Errorf("removing TXT %s through DNS provider %q: %w", set.fqdn, set.named.Name, err)
		}
		s.r.logger.InfoContext(ctx, "removed TXT records", "fqdn", set.fqdn, "zone", set.zone,
			"provider", set.named.Name, "values", len(set.values))
		return nil
	})
}

// Wait returns when every server asked answers every RRset with all its
// values (see Options.Resolvers for which servers), or an error wrapping
// ErrNotPropagated naming each server that still disagrees and what it
// answered. Each RRset is bounded by its provider's PropagationTimeout.
func (s *solver) Wait(ctx context.Context, challenges []issuer.Challenge) error {
	sets, err := s.group(ctx, challenges)
	if err != nil {
		return err
	}
	start := time.Now()
	err = eachSet(sets, func(set rrset) error { return s.r.waitSet(ctx, set) })
	if err == nil {
		s.r.logger.InfoContext(ctx, "challenge records visible", "rrsets", len(sets), "duration", time.Since(start))
	}
	return err
}

// eachSet runs fn for every set concurrently and joins the errors in the
// order of sets.
func eachSet(sets []rrset, fn func(rrset) error) error {
	errs := make([]error, len(sets))
	var wg sync.WaitGroup
	for i, set := range sets {
		wg.Go(func() { errs[i] = fn(set) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
