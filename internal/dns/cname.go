package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// maxCNAMEHops bounds a CNAME chain (challenge delegation and CAA lookups);
// longer chains are an error.
const maxCNAMEHops = 8

// ErrCNAMEChain is wrapped by the error for a CNAME loop or a chain longer
// than eight links.
var ErrCNAMEChain = errors.New("unusable CNAME chain")

// ChallengeName returns the record name of the DNS-01 challenge for name
// (RFC 8555 section 8.4): "_acme-challenge." and the name without a
// leading "*.", lowercase, with a trailing dot.
func ChallengeName(name string) string {
	return "_acme-challenge." + normalize(name) + "."
}

// Target is where the challenge record of one name is written.
type Target struct {
	// Name is the name as requested.
	Name string
	// Record is _acme-challenge.<name>. itself, or where it is delegated:
	// _acme-challenge.<dnsAlias>. or the end of its CNAME chain.
	Record string
	// Chain is the CNAME chain from _acme-challenge.<name>. to Record
	// (both included) when the record is delegated by CNAME.
	Chain []string
	// Provider and Zone write Record.
	Provider string
	Zone     string
}

// lookupResolvers are the servers asked, recursion desired, for CNAME and
// NS records: Options.Resolvers, else the system's.
func (r *Registry) lookupResolvers() ([]string, error) {
	if len(r.opts.Resolvers) > 0 {
		return r.opts.Resolvers, nil
	}
	if len(r.systemResolvers) > 0 {
		return r.systemResolvers, nil
	}
	cfg, err := mdns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", resolvConf, err)
	}
	var out []string
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("reading %s: no nameserver", resolvConf)
	}
	return out, nil
}

// cnameChain follows CNAME records from fqdn and returns the chain, fqdn
// first; a name that is not a CNAME gives a chain of one. Names are
// lowercase with a trailing dot.
func (r *Registry) cnameChain(ctx context.Context, fqdn string) ([]string, error) {
	resolvers, err := r.lookupResolvers()
	if err != nil {
		return nil, err
	}
	chain := []string{strings.ToLower(mdns.Fqdn(fqdn))}
	for {
		cur := chain[len(chain)-1]
		next, err := lookupCNAME(ctx, resolvers, cur)
		if err != nil {
			return nil, fmt.Errorf("looking up CNAME %s: %w", cur, err)
		}
		if next == "" {
			return chain, nil
		}
		if slices.Contains(chain, next) {
			return nil, fmt.Errorf("%w: CNAME loop: %s", ErrCNAMEChain, strings.Join(append(chain, next), " → "))
		}
		chain = append(chain, next)
		if len(chain) > maxCNAMEHops+1 {
			return nil, fmt.Errorf("%w: longer than %d links: %s", ErrCNAMEChain, maxCNAMEHops, strings.Join(chain, " → "))
		}
	}
}

// lookupCNAME returns the CNAME target of name (lowercase, with a trailing
// dot), or "" when name is not a CNAME (NXDOMAIN, or no CNAME record).
func lookupCNAME(ctx context.Context, resolvers []string, name string) (string, error) {
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeCNAME)
	m.SetEdns0(1232, false)
	var errs []error
	for _, server := range resolvers {
		resp, err := exchange(ctx, m, server)
		if err != nil {
			errs = append(errs, fmt.Errorf("asking %s: %w", server, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		switch resp.Rcode {
		case mdns.RcodeSuccess, mdns.RcodeNameError:
		default:
			errs = append(errs, fmt.Errorf("asking %s: answered %s", server, rcodeName(resp.Rcode)))
			continue
		}
		for _, rr := range resp.Answer {
			if c, ok := rr.(*mdns.CNAME); ok && strings.EqualFold(c.Hdr.Name, name) {
				return strings.ToLower(c.Target), nil
			}
		}
		return "", nil
	}
	return "", errors.Join(errs...)
}

// target returns where the challenge record of name goes, with dnsAlias
// (normalized) or, when r follows CNAMEs, along the CNAME chain of
// _acme-challenge.<name>. It does not check that the alias's CNAMEs exist
// (see Preflight).
func (r *Registry) target(ctx context.Context, name, providerName, alias string) (Target, error) {
	t := Target{Name: name, Record: ChallengeName(name)}
	if alias != "" {
		t.Record = ChallengeName(alias)
	} else if r.opts.FollowCNAMEs {
		chain, err := r.cnameChain(ctx, t.Record)
		switch {
		case errors.Is(err, ErrCNAMEChain):
			return t, err
		case err != nil:
			// Without an answer the record's own name is the best guess;
			// a name without a zone then fails as having none.
			r.logger.WarnContext(ctx, "CNAME lookup failed; writing at the name itself", "fqdn", t.Record, "error", err)
		case len(chain) > 1:
			t.Record, t.Chain = chain[len(chain)-1], chain
		}
	}
	named, zone, err := r.ZoneFor(ctx, t.Record, providerName)
	if err != nil {
		var nz *NoZoneError
		switch {
		case !errors.As(err, &nz):
		case alias != "":
			err = fmt.Errorf("no configured DNS zone contains %s, the record of dnsAlias %s: %w", t.Record, alias, err)
		case len(t.Chain) > 1:
			err = fmt.Errorf("%s is delegated by CNAME (%s), but no configured DNS zone contains %s: %w",
				ChallengeName(name), strings.Join(t.Chain, " → "), t.Record, err)
		}
		return t, err
	}
	t.Provider, t.Zone = named.Name, zone
	return t, nil
}

// Targets returns where the challenge record of each name goes (see
// Target): with dnsAlias at _acme-challenge.<dnsAlias>., else at
// _acme-challenge.<name>. or, when Options.FollowCNAMEs is set and that is
// a CNAME, at the end of its chain. Errors: ErrUnknownProvider (wrapped),
// a *NoZoneError listing every name whose record no zone holds, a
// *ZoneConflictError, each joined with the rest.
func (r *Registry) Targets(ctx context.Context, names []string, providerName, alias string) ([]Target, error) {
	if providerName != "" {
		if _, ok := r.provider(providerName); !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownProvider, providerName)
		}
	}
	alias = normalize(alias)
	out := make([]Target, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, 8)
	done := make(chan struct{})
	for i, name := range names {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem; done <- struct{}{} }()
			out[i], errs[i] = r.target(ctx, name, providerName, alias)
		}()
	}
	for range names {
		<-done
	}
	var missing []string
	var others []error
	add := func(e error) {
		if !slices.ContainsFunc(others, func(x error) bool { return x.Error() == e.Error() }) {
			others = append(others, e)
		}
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		var nz *NoZoneError
		if errors.As(err, &nz) && out[i].Record == ChallengeName(names[i]) {
			missing = append(missing, names[i])
			for _, e := range unjoin(err) {
				if !errors.As(e, &nz) {
					add(e)
				}
			}
			continue
		}
		add(err)
	}
	if len(missing) > 0 {
		others = append([]error{&NoZoneError{Names: missing}}, others...)
	}
	if err := errors.Join(others...); err != nil {
		return nil, err
	}
	return out, nil
}

// Preflight checks, before an order is placed, everything that would make
// the DNS-01 challenges of names fail: every record has a zone (see
// Targets); with dnsAlias, _acme-challenge.<name> is a CNAME (directly or
// through a chain) to _acme-challenge.<dnsAlias>; and every zone whose
// provider reports its name servers is delegated to them. The error names
// each missing record and each mismatched delegation with the expected and
// actual name servers.
func (r *Registry) Preflight(ctx context.Context, names []string, providerName, alias string) error {
	targets, err := r.Targets(ctx, names, providerName, alias)
	if err != nil {
		return err
	}
	var errs []error
	if alias := normalize(alias); alias != "" {
		errs = append(errs, r.checkAliases(ctx, names, ChallengeName(alias))...)
	}
	errs = append(errs, r.checkDelegations(ctx, targets)...)
	return errors.Join(errs...)
}

// checkAliases returns one error per name whose challenge record is not
// delegated to want by CNAME.
func (r *Registry) checkAliases(ctx context.Context, names []string, want string) []error {
	var errs []error
	seen := map[string]bool{}
	for _, name := range names {
		rec := ChallengeName(name)
		if seen[rec] {
			continue
		}
		seen[rec] = true
		if rec == want {
			continue
		}
		chain, err := r.cnameChain(ctx, rec)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("checking the CNAME %s → %s (dnsAlias): %w", rec, want, err))
		case len(chain) == 1:
			errs = append(errs, fmt.Errorf("the CNAME record %s → %s (dnsAlias) is missing: %s is not a CNAME", rec, want, rec))
		case !slices.Contains(chain, want):
			errs = append(errs, fmt.Errorf("the CNAME record %s → %s (dnsAlias) is missing: %s leads to %s instead",
				rec, want, rec, strings.Join(chain[1:], " → ")))
		}
	}
	return errs
}
