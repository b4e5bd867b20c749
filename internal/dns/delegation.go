package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// NameServerReporter is implemented by providers that can tell which name
// servers serve a zone at the DNS service; the zone's delegation can then
// be compared with them.
type NameServerReporter interface {
	// NameServers returns the host names (no trailing dot) of the servers
	// the service answers zone from.
	NameServers(ctx context.Context, zone string) ([]string, error)
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
	resp, err := lookup(ctx, resolvers, owner, mdns.TypeCNAME)
	if err != nil {
		return "", fmt.Errorf("looking up CNAME %s: %w", owner, err)
	}
	for _, rr := range resp.Answer {
		if cn, ok := rr.(*mdns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, owner) {
			return strings.ToLower(strings.TrimSuffix(cn.Target, ".")), nil
		}
	}
	return "", nil
}

// CheckDelegation compares the NS records of zone, asked of the configured
// resolvers or the system's, with the name servers the provider reports.
// known is false when the provider does not report them (it does not
// implement NameServerReporter); err says how they differ.
func (r *Registry) CheckDelegation(ctx context.Context, providerName, zone string) (known bool, err error) {
	p, ok := r.provider(providerName)
	if !ok {
		return false, fmt.Errorf("%w %q", ErrUnknownProvider, providerName)
	}
	reporter, ok := p.Provider.(NameServerReporter)
	if !ok {
		return false, nil
	}
	want, err := reporter.NameServers(ctx, zone)
	if err != nil {
		return true, fmt.Errorf("asking DNS provider %q for the name servers of %s: %w", providerName, zone, err)
	}
	resolvers, err := r.recursiveResolvers()
	if err != nil {
		return true, err
	}
	resp, err := lookup(ctx, resolvers, zone, mdns.TypeNS)
	if err != nil {
		return true, fmt.Errorf("looking up the delegation of %s: %w", zone, err)
	}
	var got []string
	for _, rr := range resp.Answer {
		if ns, ok := rr.(*mdns.NS); ok {
			got = append(got, strings.ToLower(strings.TrimSuffix(ns.Ns, ".")))
		}
	}
	for i := range want {
		want[i] = strings.ToLower(strings.TrimSuffix(want[i], "."))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return true, fmt.Errorf("zone %s is delegated to %s, but DNS provider %q serves it from %s",
			zone, orNone(got), providerName, orNone(want))
	}
	return true, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no name server"
	}
	return strings.Join(s, ", ")
}
