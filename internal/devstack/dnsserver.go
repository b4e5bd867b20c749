package devstack

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// dnsServer is the embedded authoritative DNS server: it answers queries for
// its zones from a store and applies dynamic updates (RFC 2136) signed with
// one TSIG key (RFC 8945). It serves UDP and TCP on one loopback port.
type dnsServer struct {
	addr      string
	keyName   string // fully qualified, lowercase
	algorithm string // dns.HmacSHA256
	store     *store
	log       *slog.Logger

	servers []*dns.Server
	closeMu sync.Mutex
	closed  bool
}

// startDNS listens on a free 127.0.0.1 port, UDP and TCP, and serves zones
// (fully qualified, lowercase). Updates must be signed with keyName and the
// base64 secret using HMAC-SHA256. It returns once both listeners serve.
func startDNS(zones []string, keyName, secret string, logger *slog.Logger) (*dnsServer, error) {
	pc, l, err := listenUDPAndTCP()
	if err != nil {
		return nil, err
	}
	s := &dnsServer{
		addr:      pc.LocalAddr().String(),
		keyName:   dns.CanonicalName(keyName),
		algorithm: dns.HmacSHA256,
		store:     newStore(zones),
		log:       logger,
	}
	tsig := map[string]string{s.keyName: secret}
	s.servers = []*dns.Server{
		{PacketConn: pc, Handler: s, TsigSecret: tsig, MsgAcceptFunc: acceptMsg},
		{Listener: l, Handler: s, TsigSecret: tsig, MsgAcceptFunc: acceptMsg, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second},
	}
	for _, srv := range s.servers {
		started := make(chan struct{})
		failed := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { failed <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-failed:
			_ = s.close()
			return nil, fmt.Errorf("serving DNS on %s: %w", s.addr, err)
		}
	}
	return s, nil
}

// listenUDPAndTCP binds a UDP and a TCP socket on the same free loopback
// port. The UDP port may be taken for TCP by someone else, so it retries.
func listenUDPAndTCP() (net.PacketConn, net.Listener, error) {
	var err error
	for range 20 {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			continue
		}
		var l net.Listener
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		_ = pc.Close()
	}
	return nil, nil, fmt.Errorf("listening for DNS on 127.0.0.1: %w", err)
}

// acceptMsg lets queries and dynamic updates through to ServeDNS (miekg's
// default refuses updates), ignores responses, and answers other opcodes
// with NOTIMP. ServeDNS checks the sections.
func acceptMsg(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	switch int(dh.Bits>>11) & 0xF {
	case dns.OpcodeQuery, dns.OpcodeUpdate:
		return dns.MsgAccept
	}
	return dns.MsgRejectNotImplemented
}

// close stops both servers and waits for them; a second call does nothing.
func (s *dnsServer) close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(); err != nil && !strings.Contains(err.Error(), "server not started") {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping DNS server: %w", err)
	}
	return nil
}

// ServeDNS implements dns.Handler.
func (s *dnsServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	switch r.Opcode {
	case dns.OpcodeQuery:
		s.query(w, r)
	case dns.OpcodeUpdate:
		s.update(w, r)
	default:
		s.reply(w, r, fail(r, dns.RcodeNotImplemented))
	}
}

// fail returns an empty reply to r with rcode.
func fail(r *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	return m
}

// reply writes m, truncated to what the client can take, with an OPT RR
// when the request had one.
func (s *dnsServer) reply(w dns.ResponseWriter, r, m *dns.Msg) {
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		// The OPT RR goes before a TSIG RR, which must come last.
		tsig := m.IsTsig()
		if tsig != nil {
			m.Extra = m.Extra[:len(m.Extra)-1]
		}
		m.SetEdns0(uint16(min(size, 1232)), false)
		if tsig != nil {
			m.Extra = append(m.Extra, tsig)
		}
	}
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		size = dns.MaxMsgSize
	}
	m.Truncate(size)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("writing DNS reply", "error", err)
	}
}

// maxChain bounds how many CNAMEs a query follows inside the served zones.
const maxChain = 8

// query answers a standard query authoritatively for the served zones and
// refuses others.
func (s *dnsServer) query(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		s.reply(w, r, fail(r, dns.RcodeFormatError))
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	zone := s.store.zoneOf(name)
	if zone == "" || q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		s.reply(w, r, fail(r, dns.RcodeRefused))
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	owner := q.Name
	for range maxChain {
		res := s.store.lookup(name, q.Qtype)
		for _, rr := range res.answer {
			rr.Header().Name = owner
		}
		m.Answer = append(m.Answer, res.answer...)
		if res.cname != nil {
			res.cname.Header().Name = owner
			m.Answer = append(m.Answer, res.cname)
			target := res.cname.(*dns.CNAME).Target
			name, owner = strings.ToLower(target), target
			if zone = s.store.zoneOf(name); zone == "" {
				break // the target is elsewhere; the client follows it
			}
			continue
		}
		switch {
		case len(res.answer) > 0:
			if q.Qtype == dns.TypeNS {
				m.Extra = append(m.Extra, s.glue(res.answer)...)
			}
		case !res.exists:
			m.Rcode = dns.RcodeNameError
			fallthrough
		default:
			if soa := s.store.soa(zone); soa != nil {
				m.Ns = append(m.Ns, soa)
			}
		}
		break
	}
	s.reply(w, r, m)
}

// glue returns the A records of the name servers in nsRRs that the store
// holds.
func (s *dnsServer) glue(nsRRs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range nsRRs {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		out = append(out, s.store.lookup(strings.ToLower(ns.Ns), dns.TypeA).answer...)
	}
	return out
}

// update applies a dynamic update (RFC 2136 section 3) when it is signed
// with the server's TSIG key.
func (s *dnsServer) update(w dns.ResponseWriter, r *dns.Msg) {
	t := r.IsTsig()
	switch {
	case t == nil:
		s.log.Warn("refused unsigned DNS update", "remote", w.RemoteAddr().String())
		s.reply(w, r, fail(r, dns.RcodeRefused))
		return
	case w.TsigStatus() != nil || dns.CanonicalName(t.Algorithm) != s.algorithm || dns.CanonicalName(t.Hdr.Name) != s.keyName:
		s.log.Warn("refused DNS update with a bad TSIG signature", "remote", w.RemoteAddr().String(),
			"key_name", t.Hdr.Name, "tsig_error", fmt.Sprint(w.TsigStatus()))
		s.writeTSIGError(w, r, t, w.TsigStatus())
		return
	}
	rcode := s.apply(r)
	m := fail(r, rcode)
	// Sign the answer, as RFC 8945 section 5.3 requires for a signed request.
	m.SetTsig(s.keyName, s.algorithm, 300, time.Now().Unix())
	s.reply(w, r, m)
}

// writeTSIGError answers a badly signed request with NOTAUTH and an unsigned
// TSIG RR whose error says why (RFC 8945 section 5.2).
func (s *dnsServer) writeTSIGError(w dns.ResponseWriter, r *dns.Msg, t *dns.TSIG, status error) {
	m := fail(r, dns.RcodeNotAuth)
	tsigErr := uint16(dns.RcodeBadSig)
	switch {
	case errors.Is(status, dns.ErrSecret), dns.CanonicalName(t.Hdr.Name) != s.keyName, dns.CanonicalName(t.Algorithm) != s.algorithm:
		tsigErr = dns.RcodeBadKey
	case errors.Is(status, dns.ErrTime):
		tsigErr = dns.RcodeBadTime
	}
	m.Extra = append(m.Extra, &dns.TSIG{
		Hdr:        dns.RR_Header{Name: dns.Fqdn(t.Hdr.Name), Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  dns.Fqdn(t.Algorithm),
		TimeSigned: uint64(time.Now().Unix()),
		Fudge:      t.Fudge,
		OrigId:     r.Id,
		Error:      tsigErr,
	})
	data, err := m.Pack()
	if err != nil {
		s.log.Debug("packing DNS reply", "error", err)
		return
	}
	if _, err := w.Write(data); err != nil {
		s.log.Debug("writing DNS reply", "error", err)
	}
}

// apply checks and applies the update r and returns the rcode of the
// answer. Either every update RR is applied or none.
func (s *dnsServer) apply(r *dns.Msg) int {
	// Zone section (RFC 2136 section 3.1).
	if len(r.Question) != 1 || r.Question[0].Qtype != dns.TypeSOA {
		return dns.RcodeFormatError
	}
	zone := strings.ToLower(dns.Fqdn(r.Question[0].Name))
	if !s.store.served(zone) {
		s.log.Warn("refused DNS update for a zone not served", "zone", zone)
		return dns.RcodeNotAuth
	}
	// Update section prescan (RFC 2136 section 3.4.1).
	for _, rr := range r.Ns {
		h := rr.Header()
		if !dns.IsSubDomain(zone, strings.ToLower(h.Name)) {
			s.log.Warn("refused DNS update outside its zone", "zone", zone, "name", h.Name)
			return dns.RcodeNotZone
		}
		switch h.Class {
		case dns.ClassINET:
			if isMeta(h.Rrtype) || h.Rrtype == dns.TypeANY {
				return dns.RcodeFormatError
			}
		case dns.ClassANY:
			if h.Ttl != 0 || h.Rdlength != 0 || isMeta(h.Rrtype) {
				return dns.RcodeFormatError
			}
		case dns.ClassNONE:
			if h.Ttl != 0 || isMeta(h.Rrtype) || h.Rrtype == dns.TypeANY {
				return dns.RcodeFormatError
			}
		default:
			return dns.RcodeFormatError
		}
	}

	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if rcode := s.prerequisitesLocked(zone, r.Answer); rcode != dns.RcodeSuccess {
		return rcode
	}
	changed := false
	for _, rr := range r.Ns {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		var c bool
		switch h.Class {
		case dns.ClassINET:
			c = s.store.addLocked(zone, rr)
		case dns.ClassANY:
			c = s.store.deleteRRsetLocked(zone, name, h.Rrtype)
		case dns.ClassNONE:
			c = s.store.deleteRRLocked(zone, rr)
		}
		s.log.Debug("DNS update", "zone", zone, "op", updateOp(h.Class), "name", name,
			"type", dns.TypeToString[h.Rrtype], "changed", c)
		changed = changed || c
	}
	if changed {
		s.store.bumpSerialLocked(zone)
	}
	return dns.RcodeSuccess
}

// prerequisitesLocked checks the prerequisite section (RFC 2136 section
// 3.2). Callers hold s.store.mu.
func (s *dnsServer) prerequisitesLocked(zone string, prereqs []dns.RR) int {
	var valueDependent []dns.RR
	for _, rr := range prereqs {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		if !dns.IsSubDomain(zone, name) {
			return dns.RcodeNotZone
		}
		if h.Ttl != 0 {
			return dns.RcodeFormatError
		}
		switch h.Class {
		case dns.ClassANY:
			if h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if !s.store.rrsetExistsLocked(name, h.Rrtype) {
				if h.Rrtype == dns.TypeANY {
					return dns.RcodeNameError
				}
				return dns.RcodeNXRrset
			}
		case dns.ClassNONE:
			if h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if s.store.rrsetExistsLocked(name, h.Rrtype) {
				if h.Rrtype == dns.TypeANY {
					return dns.RcodeYXDomain
				}
				return dns.RcodeYXRrset
			}
		case dns.ClassINET:
			valueDependent = append(valueDependent, rr)
		default:
			return dns.RcodeFormatError
		}
	}
	// Value-dependent: each listed RRset is exactly what the store holds.
	type key struct {
		name string
		t    uint16
	}
	listed := make(map[key]int)
	for _, rr := range valueDependent {
		if !s.store.containsLocked(rr) {
			return dns.RcodeNXRrset
		}
		listed[key{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}]++
	}
	for k, n := range listed {
		if s.store.countLocked(k.name, k.t) != n {
			return dns.RcodeNXRrset
		}
	}
	return dns.RcodeSuccess
}

// isMeta reports whether t is a meta or query type that cannot be stored.
func isMeta(t uint16) bool {
	switch t {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeTSIG, dns.TypeOPT:
		return true
	}
	return false
}

func updateOp(class uint16) string {
	switch class {
	case dns.ClassINET:
		return "add"
	case dns.ClassANY:
		return "delete_rrset"
	default:
		return "delete_rr"
	}
}
