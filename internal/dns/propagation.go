package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// ErrNotPropagated is wrapped by Wait's error when some server still does
// not answer with every expected value at the deadline.
var ErrNotPropagated = errors.New("DNS records not visible")

// Polling backoff of the propagation check, and the bound of one query.
const (
	firstBackoff = 50 * time.Millisecond
	maxBackoff   = time.Second
	queryTimeout = 3 * time.Second
)

// resolvConf is the system resolver configuration used to find a zone's
// authoritative servers.
const resolvConf = "/etc/resolv.conf"

// serverState is what one server answered last.
type serverState struct {
	server string
	ok     bool
	last   string
}

// waitSet polls every server for set until each answers with all of its
// values, bounded by the provider's propagation timeout.
func (r *Registry) waitSet(ctx context.Context, set rrset) error {
	timeout := r.propagationTimeout(set.named)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	servers, recursion := r.opts.Resolvers, true
	if len(servers) == 0 {
		var err error
		servers, err = r.authoritative(wctx, set.zone)
		if err != nil {
			return fmt.Errorf("waiting for TXT %s: %w", set.fqdn, err)
		}
		recursion = false
	}
	states := make([]serverState, len(servers))
	var wg sync.WaitGroup
	for i, server := range servers {
		wg.Go(func() { states[i] = r.pollServer(wctx, server, set.fqdn, set.values, recursion) })
	}
	wg.Wait()

	var pending []string
	for _, st := range states {
		if !st.ok {
			pending = append(pending, st.server+" "+st.last)
		}
	}
	if len(pending) == 0 {
		r.logger.DebugContext(ctx, "TXT records visible", "fqdn", set.fqdn, "servers", servers)
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("waiting for TXT %s: %w (still waiting for %s)", set.fqdn, context.Cause(ctx), strings.Join(pending, "; "))
	}
	return fmt.Errorf("waiting for TXT %s: %w after %s: %s", set.fqdn, ErrNotPropagated, timeout, strings.Join(pending, "; "))
}

// pollServer asks server for the TXT RRset at fqdn, with a backoff from 50 ms
// to 1 s, until it holds every one of want or ctx ends.
func (r *Registry) pollServer(ctx context.Context, server, fqdn string, want []string, recursion bool) serverState {
	st := serverState{server: server, last: "was not asked"}
	backoff := firstBackoff
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return st
		case <-timer.C:
		}
		got, rcode, err := queryTXT(ctx, server, fqdn, recursion)
		switch {
		case err != nil:
			if ctx.Err() != nil && st.last != "was not asked" {
				return st // keep the last real answer
			}
			st.last = "did not answer: " + err.Error()
		case rcode != mdns.RcodeSuccess:
			st.last = "answered " + rcodeName(rcode)
		default:
			missing := slices.DeleteFunc(slices.Clone(want), func(v string) bool { return slices.Contains(got, v) })
			if len(missing) == 0 {
				st.ok = true
				return st
			}
			st.last = fmt.Sprintf("answered %s, missing %s", quoteList(got), quoteList(missing))
		}
		r.logger.DebugContext(ctx, "TXT records not visible yet", "server", server, "fqdn", fqdn, "answer", st.last, "retry_in", backoff)
		timer.Reset(backoff)
		backoff = min(backoff*2, maxBackoff)
	}
}

func quoteList(values []string) string {
	if len(values) == 0 {
		return "no TXT records"
	}
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, " ") + "]"
}

func rcodeName(rcode int) string {
	if s, ok := mdns.RcodeToString[rcode]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(rcode)
}

// queryTXT asks server once for TXT fqdn, over UDP and again over TCP when
// the answer is truncated. It returns the values of the TXT records in the
// answer section (character-strings joined) and the rcode.
func queryTXT(ctx context.Context, server, fqdn string, recursion bool) ([]string, int, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(fqdn), mdns.TypeTXT)
	m.RecursionDesired = recursion
	m.SetEdns0(1232, false)
	resp, err := exchange(ctx, m, server)
	if err != nil {
		return nil, 0, err
	}
	var values []string
	for _, rr := range resp.Answer {
		if txt, ok := rr.(*mdns.TXT); ok {
			values = append(values, strings.Join(txt.Txt, ""))
		}
	}
	return values, resp.Rcode, nil
}

// exchange sends m to server over UDP, then TCP when the answer is
// truncated. Each attempt is bounded by queryTimeout and ends at once when
// ctx does.
func exchange(ctx context.Context, m *mdns.Msg, server string) (*mdns.Msg, error) {
	resp, err := exchangeOnce(ctx, m, server, "udp")
	if err == nil && resp.Truncated {
		resp, err = exchangeOnce(ctx, m, server, "tcp")
	}
	return resp, err
}

func exchangeOnce(ctx context.Context, m *mdns.Msg, server, network string) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	c := &mdns.Client{Net: network, Timeout: queryTimeout}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp, err
}

// authoritative returns host:port of every address of zone's name servers,
// found through the system resolver (or r.systemResolvers).
func (r *Registry) authoritative(ctx context.Context, zone string) ([]string, error) {
	resolvers := r.systemResolvers
	if len(resolvers) == 0 {
		cfg, err := mdns.ClientConfigFromFile(resolvConf)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", resolvConf, err)
		}
		for _, s := range cfg.Servers {
			resolvers = append(resolvers, net.JoinHostPort(s, cfg.Port))
		}
		if len(resolvers) == 0 {
			return nil, fmt.Errorf("reading %s: no nameserver", resolvConf)
		}
	}
	ns, err := resolve(ctx, resolvers, zone, mdns.TypeNS)
	if err != nil {
		return nil, fmt.Errorf("looking up the name servers of zone %s: %w", zone, err)
	}
	var hosts []string
	for _, rr := range ns.Answer {
		if n, ok := rr.(*mdns.NS); ok {
			hosts = append(hosts, strings.ToLower(n.Ns))
		}
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("looking up the name servers of zone %s: no NS records", zone)
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)

	var servers []string
	var errs []error
	for _, host := range hosts {
		addrs := glue(ns, host)
		if len(addrs) == 0 {
			for _, qtype := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
				resp, err := resolve(ctx, resolvers, host, qtype)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				addrs = append(addrs, glue(resp, host)...)
			}
		}
		if len(addrs) == 0 {
			errs = append(errs, fmt.Errorf("name server %s has no address", host))
		}
		for _, a := range addrs {
			servers = append(servers, net.JoinHostPort(a, r.authPort))
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("resolving the name servers of zone %s: %w", zone, errors.Join(errs...))
	}
	slices.Sort(servers)
	return slices.Compact(servers), nil
}

// glue returns the A and AAAA addresses of host in resp's answer and
// additional sections.
func glue(resp *mdns.Msg, host string) []string {
	var addrs []string
	for _, rr := range slices.Concat(resp.Answer, resp.Extra) {
		if !strings.EqualFold(rr.Header().Name, host) {
			continue
		}
		switch a := rr.(type) {
		case *mdns.A:
			addrs = append(addrs, a.A.String())
		case *mdns.AAAA:
			addrs = append(addrs, a.AAAA.String())
		}
	}
	return addrs
}

// resolve asks the resolvers in turn, recursion desired, until one answers
// NOERROR.
func resolve(ctx context.Context, resolvers []string, name string, qtype uint16) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	var errs []error
	for _, server := range resolvers {
		resp, err := exchange(ctx, m, server)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("asking %s: %w", server, err))
		case resp.Rcode != mdns.RcodeSuccess:
			errs = append(errs, fmt.Errorf("asking %s for %s %s: answered %s", server, mdns.TypeToString[qtype], name, rcodeName(resp.Rcode)))
		default:
			return resp, nil
		}
	}
	return nil, errors.Join(errs...)
}
