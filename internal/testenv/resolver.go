package testenv

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Resolver is a DNS resolver stand-in on loopback: it answers every query
// by asking an authoritative server and, when the answer ends in a CNAME
// whose target it does not include, asks again for the target and appends
// that answer, as the recursive resolvers of a CA do. BIND, authoritative
// for several zones, answers only the first link of a chain that crosses
// zones.
type Resolver struct {
	// Addr is the 127.0.0.1:port it answers on, UDP and TCP.
	Addr string
}

// StartResolver starts a Resolver in front of the authoritative server at
// upstream (host:port). It stops in t.Cleanup.
func StartResolver(t testing.TB, upstream string) *Resolver {
	t.Helper()
	// The UDP port the system picks may be taken for TCP by another test
	// running at the same time: try a few ports.
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	for range 10 {
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatalf("starting resolver: %v", err)
		}
		if l, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("starting resolver: %v", err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		w.WriteMsg(chase(upstream, req))
	})
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: l, Handler: handler}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return &Resolver{Addr: pc.LocalAddr().String()}
}

// chase answers req from upstream, following CNAMEs across zones.
func chase(upstream string, req *dns.Msg) *dns.Msg {
	out := new(dns.Msg)
	out.SetReply(req)
	out.RecursionAvailable = true
	if len(req.Question) != 1 {
		out.Rcode = dns.RcodeFormatError
		return out
	}
	q := req.Question[0]
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	name := q.Name
	for range 8 {
		m := new(dns.Msg)
		m.SetQuestion(name, q.Qtype)
		m.RecursionDesired = false
		resp, _, err := c.Exchange(m, upstream)
		if err != nil {
			out.Rcode = dns.RcodeServerFailure
			return out
		}
		out.Rcode = resp.Rcode
		out.Answer = append(out.Answer, resp.Answer...)
		next := ""
		answered := false
		for _, rr := range resp.Answer {
			switch {
			case rr.Header().Rrtype == q.Qtype:
				answered = true
			case rr.Header().Rrtype == dns.TypeCNAME:
				next = rr.(*dns.CNAME).Target
			}
		}
		if answered || next == "" || q.Qtype == dns.TypeCNAME || strings.EqualFold(next, name) {
			return out
		}
		// The chain leaves the answer: ask for its last target.
		for _, rr := range resp.Answer {
			if cn, ok := rr.(*dns.CNAME); ok {
				next = cn.Target
			}
		}
		name = next
	}
	return out
}
