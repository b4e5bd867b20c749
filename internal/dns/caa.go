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

// CAACheck is what the CAA records (RFC 8659) of one name say about one CA.
type CAACheck struct {
	// Name is the name as requested ("*.example.com" for a wildcard).
	Name string
	// Owner is where the relevant CAA RRset was found, walking up from
	// Name; empty when no name up to the TLD has one.
	Owner string
	// Records are the relevant RRset in presentation form, such as
	// `example.com. CAA 0 issue "letsencrypt.org"`.
	Records []string
	// Allowed is true when the records let the CA issue for Name.
	Allowed bool
	// Reason says why, quoting the records that decided.
	Reason string
	// Err is set when the lookup failed or the verdict cannot be known;
	// Allowed is then false and the CA's own check decides.
	Err error
}

// Forbidden reports whether the records forbid the CA: a definite no, not
// an unknown.
func (c CAACheck) Forbidden() bool { return !c.Allowed && c.Err == nil }

// CAAError is returned for names whose CAA records forbid a CA.
type CAAError struct {
	// CA is the CA's name.
	CA string
	// Checks are the forbidding verdicts, one per name.
	Checks []CAACheck
}

func (e *CAAError) Error() string {
	parts := make([]string, len(e.Checks))
	for i, c := range e.Checks {
		parts[i] = c.Name + ": " + c.Reason
	}
	return fmt.Sprintf("CAA records forbid CA %s: %s", e.CA, strings.Join(parts, "; "))
}

// CAAForbidden returns a *CAAError for the checks that forbid the CA named
// ca, or nil when none does.
func CAAForbidden(ca string, checks []CAACheck) error {
	var bad []CAACheck
	for _, c := range checks {
		if c.Forbidden() {
			bad = append(bad, c)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &CAAError{CA: ca, Checks: bad}
}

// CheckCAA looks up the CAA records of every name, climbing from the name
// towards its TLD and following CNAMEs (RFC 8659 section 3), and decides
// for each whether a CA with identities (its directory's caaIdentities) may
// issue. accountURI is the CA account's URI for records with an accounturi
// parameter (RFC 8657); empty when not known. The records are asked of the
// configured resolvers, or the system's. Names are checked concurrently; the
// verdicts come back in the order of names.
func (r *Registry) CheckCAA(ctx context.Context, names, identities []string, accountURI string) []CAACheck {
	out := make([]CAACheck, len(names))
	resolvers, err := r.recursiveResolvers()
	if err != nil {
		for i, n := range names {
			out[i] = CAACheck{Name: n, Err: err}
		}
		return out
	}
	done := make(chan struct{})
	for i, n := range names {
		go func() {
			defer func() { done <- struct{}{} }()
			out[i] = r.checkCAA(ctx, resolvers, n, identities, accountURI)
		}()
	}
	for range names {
		<-done
	}
	return out
}

// recursiveResolvers are the servers CAA and CNAME lookups ask: the
// configured resolvers, or the system's.
func (r *Registry) recursiveResolvers() ([]string, error) {
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

func (r *Registry) checkCAA(ctx context.Context, resolvers []string, name string, identities []string, accountURI string) CAACheck {
	c := CAACheck{Name: name}
	host := normalize(name)
	wildcard := strings.HasPrefix(strings.TrimSpace(name), "*.")
	labels := strings.Split(host, ".")
	for i := range labels {
		x := strings.Join(labels[i:], ".")
		rrs, err := caaAt(ctx, resolvers, x)
		if err != nil {
			c.Err = fmt.Errorf("looking up CAA records of %s: %w", x, err)
			return c
		}
		if len(rrs) > 0 {
			c.Owner = x
			for _, rr := range rrs {
				c.Records = append(c.Records, presentCAA(x, rr))
			}
			c.Allowed, c.Reason, c.Err = evaluateCAA(x, rrs, wildcard, identities, accountURI)
			return c
		}
	}
	c.Allowed, c.Reason = true, "no CAA records up to "+labels[len(labels)-1]
	return c
}

// caaAt returns the CAA RRset of name, following CNAMEs; none for a name
// that does not exist or has no CAA records.
func caaAt(ctx context.Context, resolvers []string, name string) ([]*mdns.CAA, error) {
	target := mdns.Fqdn(name)
	for range maxCNAMEHops {
		resp, err := lookup(ctx, resolvers, target, mdns.TypeCAA)
		if err != nil {
			return nil, err
		}
		if resp.Rcode == mdns.RcodeNameError {
			return nil, nil
		}
		cur := target
		for hops := 0; hops < maxCNAMEHops; hops++ {
			next := ""
			for _, rr := range resp.Answer {
				if cn, ok := rr.(*mdns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, cur) {
					next = cn.Target
				}
			}
			if next == "" {
				break
			}
			cur = next
		}
		var rrs []*mdns.CAA
		for _, rr := range resp.Answer {
			if caa, ok := rr.(*mdns.CAA); ok && strings.EqualFold(caa.Hdr.Name, cur) {
				rrs = append(rrs, caa)
			}
		}
		if len(rrs) > 0 || strings.EqualFold(cur, target) {
			return rrs, nil
		}
		// The answer ends at a CNAME whose target it does not resolve.
		target = cur
	}
	return nil, fmt.Errorf("more than %d CNAMEs from %s", maxCNAMEHops, name)
}

// lookup asks the resolvers in turn, recursion desired, until one answers
// NOERROR or NXDOMAIN.
func lookup(ctx context.Context, resolvers []string, name string, qtype uint16) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	var errs []error
	for _, server := range resolvers {
		resp, err := exchange(ctx, m, server)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("asking %s: %w", server, err))
		case resp.Rcode != mdns.RcodeSuccess && resp.Rcode != mdns.RcodeNameError:
			errs = append(errs, fmt.Errorf("asking %s for %s %s: answered %s", server, mdns.TypeToString[qtype], name, rcodeName(resp.Rcode)))
		default:
			return resp, nil
		}
	}
	return nil, errors.Join(errs...)
}

// presentCAA writes rr as `owner. CAA flag tag "value"`.
func presentCAA(owner string, rr *mdns.CAA) string {
	return fmt.Sprintf("%s. CAA %d %s %q", owner, rr.Flag, rr.Tag, rr.Value)
}

// caaKnownTags are the property tags whose meaning is known; an unknown one
// marked critical forbids issuance (RFC 8659 section 4.1).
var caaKnownTags = []string{"issue", "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone"}

// evaluateCAA decides whether a CA with identities may issue for a name
// (wildcard or not) given the relevant RRset found at owner (RFC 8659
// section 4.2 and 4.3, with the accounturi and validationmethods
// parameters of RFC 8657; certkeeper validates by dns-01). unknown is set
// when the CA publishes no identities and a record names an issuer.
func evaluateCAA(owner string, rrs []*mdns.CAA, wildcard bool, identities []string, accountURI string) (allowed bool, reason string, unknown error) {
	for _, rr := range rrs {
		if rr.Flag&128 != 0 && !slices.Contains(caaKnownTags, strings.ToLower(rr.Tag)) {
			return false, fmt.Sprintf("%s sets the critical flag on a property no CA is required to understand", presentCAA(owner, rr)), nil
		}
	}
	tag := "issue"
	if wildcard && slices.ContainsFunc(rrs, func(rr *mdns.CAA) bool { return strings.EqualFold(rr.Tag, "issuewild") }) {
		tag = "issuewild"
	}
	var relevant []*mdns.CAA
	for _, rr := range rrs {
		if strings.EqualFold(rr.Tag, tag) {
			relevant = append(relevant, rr)
		}
	}
	if len(relevant) == 0 {
		return true, fmt.Sprintf("the CAA records at %s have no %s property", owner, tag), nil
	}
	quoted := make([]string, len(relevant))
	var refusals []string
	namesIssuer := false
	for i, rr := range relevant {
		quoted[i] = presentCAA(owner, rr)
		issuer, params := parseCAAValue(rr.Value)
		if issuer != "" {
			namesIssuer = true
		}
		if issuer == "" || !slices.Contains(identities, issuer) {
			continue
		}
		if uri, ok := params["accounturi"]; ok && uri != accountURI {
			who := "an account that is not yet known"
			if accountURI != "" {
				who = "account " + accountURI
			}
			refusals = append(refusals, fmt.Sprintf("%s allows only account %s, not %s", quoted[i], uri, who))
			continue
		}
		if methods, ok := params["validationmethods"]; ok && !slices.Contains(strings.Split(methods, ","), "dns-01") {
			refusals = append(refusals, fmt.Sprintf("%s does not allow validation by dns-01", quoted[i]))
			continue
		}
		return true, quoted[i] + " allows it", nil
	}
	if len(refusals) > 0 {
		return false, strings.Join(refusals, "; "), nil
	}
	if len(identities) == 0 && namesIssuer {
		return false, "", fmt.Errorf("the CA publishes no caaIdentities, so %s cannot be matched to it", strings.Join(quoted, ", "))
	}
	ids := "none"
	if len(identities) > 0 {
		ids = strings.Join(identities, ", ")
	}
	return false, fmt.Sprintf("%s does not name this CA (its CAA identities: %s)", strings.Join(quoted, ", "), ids), nil
}

// parseCAAValue splits an issue or issuewild value into its issuer domain
// name (lowercase, empty for ";") and its key=value parameters (RFC 8659
// section 4.2).
func parseCAAValue(v string) (string, map[string]string) {
	issuer, rest, _ := strings.Cut(v, ";")
	issuer = strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(issuer), ".")))
	params := map[string]string{}
	for p := range strings.SplitSeq(rest, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok {
			params[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(val)
		}
	}
	return issuer, params
}
