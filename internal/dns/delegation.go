package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	mdns "github.com/miekg/dns"
)

// DelegationError is a zone whose NS records name none of the name servers
// its provider serves it from: records written through the provider are
// not what the world sees.
type DelegationError struct {
	Zone     string
	Provider string
	// Expected are the provider's name servers, Actual the zone's NS
	// records as the resolvers answer them (empty when the zone does not
	// exist there); lowercase without a trailing dot, sorted.
	Expected []string
	Actual   []string
}

func (e *DelegationError) Error() string {
	actual := "no NS records (the zone is not delegated)"
	if len(e.Actual) > 0 {
		actual = strings.Join(e.Actual, ", ")
	}
	return fmt.Sprintf("zone %s is not delegated to DNS provider %q: expected name servers %s, actual %s",
		e.Zone, e.Provider, strings.Join(e.Expected, ", "), actual)
}

// checkDelegations checks the zone of every target once, concurrently, and
// returns one error per mismatched delegation. A provider that does not
// report name servers, or a lookup that fails, is not checked (the failure
// is logged): the propagation check will name the servers that disagree.
func (r *Registry) checkDelegations(ctx context.Context, targets []Target) []error {
	type key struct{ provider, zone string }
	var keys []key
	for _, t := range targets {
		k := key{t.Provider, t.Zone}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		named, ok := r.provider(k.provider)
		if !ok {
			continue
		}
		reporter, ok := named.Provider.(NameServerReporter)
		if !ok {
			continue
		}
		wg.Go(func() {
			errs[i] = r.checkDelegation(ctx, named.Name, reporter, k.zone)
		})
	}
	wg.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

func (r *Registry) checkDelegation(ctx context.Context, provider string, reporter NameServerReporter, zone string) error {
	expected, err := reporter.NameServers(ctx, zone)
	if err != nil {
		r.logger.WarnContext(ctx, "provider did not report its name servers; delegation not checked",
			"provider", provider, "zone", zone, "error", err)
		return nil
	}
	expected = normalizeHosts(expected)
	if len(expected) == 0 {
		return nil
	}
	actual, err := r.nsRecords(ctx, zone)
	if err != nil {
		r.logger.WarnContext(ctx, "looking up NS records failed; delegation not checked", "zone", zone, "error", err)
		return nil
	}
	for _, ns := range actual {
		if slices.Contains(expected, ns) {
			return nil
		}
	}
	return &DelegationError{Zone: zone, Provider: provider, Expected: expected, Actual: actual}
}

// nsRecords returns zone's NS records as the lookup resolvers answer them:
// an empty list for NXDOMAIN or an answer without NS records.
func (r *Registry) nsRecords(ctx context.Context, zone string) ([]string, error) {
	resolvers, err := r.lookupResolvers()
	if err != nil {
		return nil, err
	}
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(zone), mdns.TypeNS)
	m.SetEdns0(1232, false)
	var lastErr error
	for _, server := range resolvers {
		resp, err := exchange(ctx, m, server)
		if err != nil {
			lastErr = fmt.Errorf("asking %s for NS %s: %w", server, zone, err)
			continue
		}
		if resp.Rcode != mdns.RcodeSuccess && resp.Rcode != mdns.RcodeNameError {
			lastErr = fmt.Errorf("asking %s for NS %s: answered %s", server, zone, rcodeName(resp.Rcode))
			continue
		}
		var hosts []string
		for _, rr := range resp.Answer {
			if ns, ok := rr.(*mdns.NS); ok && strings.EqualFold(ns.Hdr.Name, mdns.Fqdn(zone)) {
				hosts = append(hosts, ns.Ns)
			}
		}
		return normalizeHosts(hosts), nil
	}
	return nil, lastErr
}

// normalizeHosts lowercases host names, drops trailing dots and empty
// names, sorts and removes duplicates.
func normalizeHosts(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), "."); h != "" {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ChallengeCNAME returns the target (lowercase, no trailing dot) of the
// CNAME at _acme-challenge.<name> ("*." dropped), asked of the configured
// resolvers or the system's; "" when there is none.
func (r *Registry) ChallengeCNAME(ctx context.Context, name string) (string, error) {
	resolvers, err := r.recursiveResolvers()
	if err != nil {
		return "", err
	}
	owner := mdns.Fqdn("_acme-challenge." + normalize(name))
	target, err := lookupCNAME(ctx, resolvers, owner)
	if err != nil {
		return "", fmt.Errorf("looking up CNAME %s: %w", owner, err)
	}
	return strings.TrimSuffix(target, "."), nil
}

// CheckDelegation checks zone's delegation against the name servers its
// provider reports, as the check before ordering does (a *DelegationError
// when they share none). known is false when the provider does not report
// name servers.
func (r *Registry) CheckDelegation(ctx context.Context, providerName, zone string) (known bool, err error) {
	p, ok := r.provider(providerName)
	if !ok {
		return false, fmt.Errorf("%w %q", ErrUnknownProvider, providerName)
	}
	reporter, ok := p.Provider.(NameServerReporter)
	if !ok {
		return false, nil
	}
	return true, r.checkDelegation(ctx, p.Name, reporter, zone)
}
