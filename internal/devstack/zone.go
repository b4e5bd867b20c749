package devstack

import (
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// store is the in-memory record store of the embedded DNS server: every RR
// of every served zone, by lowercase owner name. It is safe for concurrent
// use.
type store struct {
	zones []string // lowercase, fully qualified, longest first

	mu    sync.RWMutex
	names map[string][]dns.RR // lowercase fqdn -> RRs, owner names lowercase
}

// nsTTL is the TTL of the records the server starts with; negTTL the SOA
// minimum, which bounds negative caching (RFC 2308).
const (
	nsTTL  = 300
	negTTL = 0
)

// newStore returns a store that serves zones (fully qualified, lowercase),
// each with an SOA, an NS ns.<zone> and that name's A 127.0.0.1.
func newStore(zones []string) *store {
	s := &store{names: make(map[string][]dns.RR)}
	for _, z := range zones {
		ns := "ns." + z
		s.names[z] = []dns.RR{
			&dns.SOA{
				Hdr: dns.RR_Header{Name: z, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: nsTTL},
				Ns:  ns, Mbox: "hostmaster." + z,
				Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: negTTL,
			},
			&dns.NS{Hdr: dns.RR_Header{Name: z, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: nsTTL}, Ns: ns},
		}
		s.names[ns] = []dns.RR{
			&dns.A{Hdr: dns.RR_Header{Name: ns, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: nsTTL}, A: []byte{127, 0, 0, 1}},
		}
		s.zones = append(s.zones, z)
	}
	// Longest first, so that zoneOf finds the closest enclosing zone.
	slices.SortFunc(s.zones, func(a, b string) int { return len(b) - len(a) })
	return s
}

// zoneOf returns the served zone that contains name (lowercase, fully
// qualified), or "".
func (s *store) zoneOf(name string) string {
	for _, z := range s.zones {
		if dns.IsSubDomain(z, name) {
			return z
		}
	}
	return ""
}

// served reports whether zone (lowercase, fully qualified) is a served zone.
func (s *store) served(zone string) bool { return slices.Contains(s.zones, zone) }

// soa returns a copy of zone's SOA.
func (s *store) soa(zone string) dns.RR {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.soaLocked(zone)
}

func (s *store) soaLocked(zone string) dns.RR {
	for _, rr := range s.names[zone] {
		if rr.Header().Rrtype == dns.TypeSOA {
			return dns.Copy(rr)
		}
	}
	return nil
}

// lookupResult is what the store holds for a name and type.
type lookupResult struct {
	answer []dns.RR // copies; empty when the name has no RRset of the type
	cname  dns.RR   // the name's CNAME when answer is empty and qtype is not CNAME
	exists bool     // the name owns RRs or is an empty non-terminal
}

// lookup returns copies of the RRs at name (lowercase) of type qtype
// (every type for TypeANY).
func (s *store) lookup(name string, qtype uint16) lookupResult {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var res lookupResult
	rrs := s.names[name]
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		switch {
		case t == qtype || qtype == dns.TypeANY:
			res.answer = append(res.answer, dns.Copy(rr))
		case t == dns.TypeCNAME:
			res.cname = dns.Copy(rr)
		}
	}
	if len(res.answer) > 0 {
		res.cname = nil
	}
	res.exists = len(rrs) > 0 || s.hasDescendantLocked(name)
	return res
}

// hasDescendantLocked reports whether some name below name owns RRs, which
// makes name an empty non-terminal (NODATA, not NXDOMAIN; RFC 8020).
func (s *store) hasDescendantLocked(name string) bool {
	suffix := "." + name
	for n := range s.names {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// rrsetExists reports whether name owns an RRset of type t (any type for
// TypeANY). Callers hold s.mu.
func (s *store) rrsetExistsLocked(name string, t uint16) bool {
	for _, rr := range s.names[name] {
		if t == dns.TypeANY || rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// containsLocked reports whether the store holds an RR equal to rr (owner,
// type and RDATA; class and TTL ignored). Callers hold s.mu.
func (s *store) containsLocked(rr dns.RR) bool {
	name := strings.ToLower(rr.Header().Name)
	for _, have := range s.names[name] {
		if sameRData(have, rr) {
			return true
		}
	}
	return false
}

// countLocked returns how many RRs of type t name owns (with duplicates
// removed, as the store keeps them). Callers hold s.mu.
func (s *store) countLocked(name string, t uint16) int {
	n := 0
	for _, rr := range s.names[name] {
		if rr.Header().Rrtype == t {
			n++
		}
	}
	return n
}

// sameRData reports whether a and b have the same owner, type and RDATA.
func sameRData(a, b dns.RR) bool {
	if a.Header().Rrtype != b.Header().Rrtype {
		return false
	}
	b = dns.Copy(b)
	b.Header().Class = a.Header().Class
	return dns.IsDuplicate(a, b)
}

// add adds rr (class IN) unless an equal RR is there. A CNAME is not added
// beside other data, nor other data beside a CNAME (RFC 2136 section 3.4.2.2);
// an SOA replaces the zone's SOA. Callers hold s.mu for writing.
func (s *store) addLocked(zone string, rr dns.RR) bool {
	rr = dns.Copy(rr)
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	h.Class = dns.ClassINET
	rrs := s.names[h.Name]
	switch h.Rrtype {
	case dns.TypeSOA:
		if h.Name != zone {
			return false
		}
		for i, have := range rrs {
			if have.Header().Rrtype == dns.TypeSOA {
				rrs[i] = rr
				return true
			}
		}
		return false
	case dns.TypeCNAME:
		if slices.ContainsFunc(rrs, func(have dns.RR) bool { return have.Header().Rrtype != dns.TypeCNAME }) {
			return false
		}
		// A CNAME replaces the one that is there.
		s.names[h.Name] = []dns.RR{rr}
		return true
	default:
		if s.rrsetExistsLocked(h.Name, dns.TypeCNAME) {
			return false
		}
	}
	for i, have := range rrs {
		if sameRData(have, rr) {
			rrs[i] = rr // the new TTL wins
			return false
		}
	}
	s.names[h.Name] = append(rrs, rr)
	return true
}

// protected reports whether the RRs of type t at name may not be deleted:
// the zone's SOA and NS RRsets (RFC 2136 section 3.4.2.3 and 3.4.2.4).
func protected(zone, name string, t uint16) bool {
	return name == zone && (t == dns.TypeSOA || t == dns.TypeNS)
}

// deleteRRsetLocked removes the RRset of type t at name, or every RRset at
// name for TypeANY, sparing the apex SOA and NS. Callers hold s.mu for writing.
func (s *store) deleteRRsetLocked(zone, name string, t uint16) bool {
	rrs := s.names[name]
	kept := slices.DeleteFunc(slices.Clone(rrs), func(rr dns.RR) bool {
		rt := rr.Header().Rrtype
		return (t == dns.TypeANY || rt == t) && !protected(zone, name, rt)
	})
	return s.setLocked(name, rrs, kept)
}

// deleteRRLocked removes the RR equal to rr, sparing the SOA and the last NS
// at the apex. Callers hold s.mu for writing.
func (s *store) deleteRRLocked(zone string, rr dns.RR) bool {
	name := strings.ToLower(rr.Header().Name)
	t := rr.Header().Rrtype
	if name == zone && t == dns.TypeSOA {
		return false
	}
	rrs := s.names[name]
	kept := slices.DeleteFunc(slices.Clone(rrs), func(have dns.RR) bool { return sameRData(have, rr) })
	if name == zone && t == dns.TypeNS && !slices.ContainsFunc(kept, func(k dns.RR) bool { return k.Header().Rrtype == dns.TypeNS }) {
		return false
	}
	return s.setLocked(name, rrs, kept)
}

// setLocked stores kept at name and reports whether it differs from before.
func (s *store) setLocked(name string, before, kept []dns.RR) bool {
	if len(kept) == len(before) {
		return false
	}
	if len(kept) == 0 {
		delete(s.names, name)
	} else {
		s.names[name] = kept
	}
	return true
}

// bumpSerialLocked increments zone's SOA serial after a change.
func (s *store) bumpSerialLocked(zone string) {
	for _, rr := range s.names[zone] {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Serial++
		}
	}
}
