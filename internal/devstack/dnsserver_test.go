package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/certkeeper/certkeeper/internal/dns/rfc2136"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// testDNS is a dnsServer started for one test with its own key.
type testDNS struct {
	*dnsServer
	secret string
}

func startTestDNS(t *testing.T, zones ...string) *testDNS {
	t.Helper()
	if len(zones) == 0 {
		zones = []string{"example.test."}
	}
	sec := newTestSecret()
	s, err := startDNS(zones, TSIGKeyName, sec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("startDNS: %v", err)
	}
	t.Cleanup(func() {
		if err := s.close(); err != nil {
			t.Errorf("closing DNS server: %v", err)
		}
	})
	return &testDNS{dnsServer: s, secret: sec}
}

func newTestSecret() string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	return base64.StdEncoding.EncodeToString(raw)
}

// provider returns the production rfc2136 client for the server, signing
// with keyName/algorithm/sec.
func (d *testDNS) provider(t *testing.T, keyName, algorithm, sec string) *rfc2136.Provider {
	t.Helper()
	p, err := rfc2136.New(rfc2136.Config{
		Nameserver: d.addr, TSIGKeyName: keyName, TSIGAlgorithm: algorithm,
		TSIGSecret: secret.String(sec), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("rfc2136.New: %v", err)
	}
	return p
}

func (d *testDNS) goodProvider(t *testing.T) *rfc2136.Provider {
	return d.provider(t, TSIGKeyName, TSIGAlgorithm, d.secret)
}

// signed sends a raw update m signed with the server's key and returns the
// answer.
func (d *testDNS) signed(t *testing.T, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, TsigSecret: map[string]string{TSIGKeyName: d.secret}}
	m.SetTsig(TSIGKeyName, dns.HmacSHA256, 300, time.Now().Unix())
	r, _, err := c.ExchangeContext(t.Context(), m, d.addr)
	if err != nil {
		t.Fatalf("sending update: %v", err)
	}
	return r
}

// ask queries the server over network and returns the answer.
func ask(ctx context.Context, t *testing.T, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		t.Fatalf("querying %s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return r
}

// txtValues returns the TXT values (character-strings joined) at name.
func txtValues(t *testing.T, addr, name string) []string {
	t.Helper()
	r := ask(t.Context(), t, addr, "udp", name, dns.TypeTXT)
	var out []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	slices.Sort(out)
	return out
}

func TestDNSUpdateWithProvider(t *testing.T) {
	t.Parallel()
	const fqdn = "_acme-challenge.www.example.test."
	long := strings.Repeat("x", 300) // two character-strings on the wire

	tests := []struct {
		name    string
		present []string
		cleanup []string
		want    []string
	}{
		{name: "add one", present: []string{"a"}, want: []string{"a"}},
		{name: "add two, remove one", present: []string{"a", "b"}, cleanup: []string{"a"}, want: []string{"b"}},
		{name: "add and remove all", present: []string{"a", "b"}, cleanup: []string{"b", "a"}, want: nil},
		{name: "remove what is not there", present: []string{"a"}, cleanup: []string{"zzz"}, want: []string{"a"}},
		{name: "same value twice is one record", present: []string{"a", "a"}, want: []string{"a"}},
		{name: "value longer than 255 bytes", present: []string{long}, want: []string{long}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startTestDNS(t)
			p := d.goodProvider(t)
			if err := p.Present(t.Context(), "example.test", fqdn, tc.present); err != nil {
				t.Fatalf("Present: %v", err)
			}
			if tc.cleanup != nil {
				if err := p.CleanUp(t.Context(), "example.test", fqdn, tc.cleanup); err != nil {
					t.Fatalf("CleanUp: %v", err)
				}
			}
			if diff := cmp.Diff(tc.want, txtValues(t, d.addr, fqdn)); diff != "" {
				t.Errorf("TXT values (-want +got):\n%s", diff)
			}
			r := ask(t.Context(), t, d.addr, "udp", fqdn, dns.TypeTXT)
			wantRcode := dns.RcodeSuccess
			if len(tc.want) == 0 {
				wantRcode = dns.RcodeNameError
			}
			if r.Rcode != wantRcode || !r.Authoritative {
				t.Errorf("rcode %s aa=%t, want %s aa=true", dns.RcodeToString[r.Rcode], r.Authoritative, dns.RcodeToString[wantRcode])
			}
		})
	}
}

func TestDNSUpdateRefused(t *testing.T) {
	t.Parallel()
	d := startTestDNS(t)
	tests := []struct {
		name     string
		provider func(t *testing.T) *rfc2136.Provider
		zone     string
		fqdn     string
		wantErr  string
	}{
		{
			name:     "unsigned",
			provider: func(t *testing.T) *rfc2136.Provider { return d.provider(t, "", "", "") },
			zone:     "example.test", fqdn: "_acme-challenge.unsigned.example.test.",
			wantErr: "REFUSED",
		},
		{
			name: "wrong secret",
			provider: func(t *testing.T) *rfc2136.Provider {
				return d.provider(t, TSIGKeyName, TSIGAlgorithm, newTestSecret())
			},
			zone: "example.test", fqdn: "_acme-challenge.badsig.example.test.",
			wantErr: "NOTAUTH (TSIG error BADSIG)",
		},
		{
			name:     "unknown key name",
			provider: func(t *testing.T) *rfc2136.Provider { return d.provider(t, "other-key", TSIGAlgorithm, d.secret) },
			zone:     "example.test", fqdn: "_acme-challenge.badkey.example.test.",
			wantErr: "NOTAUTH (TSIG error BADKEY)",
		},
		{
			name:     "right key with another algorithm",
			provider: func(t *testing.T) *rfc2136.Provider { return d.provider(t, TSIGKeyName, "hmac-sha512", d.secret) },
			zone:     "example.test", fqdn: "_acme-challenge.badalg.example.test.",
			wantErr: "NOTAUTH (TSIG error BADKEY)",
		},
		{
			name:     "zone not served",
			provider: func(t *testing.T) *rfc2136.Provider { return d.goodProvider(t) },
			zone:     "other.test", fqdn: "_acme-challenge.other.test.",
			wantErr: "NOTAUTH",
		},
		{
			name:     "record outside the zone",
			provider: func(t *testing.T) *rfc2136.Provider { return d.goodProvider(t) },
			zone:     "example.test", fqdn: "_acme-challenge.example.org.",
			wantErr: "NOTZONE",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.provider(t).Present(t.Context(), tc.zone, tc.fqdn, []string{"v"})
			if err == nil || !strings.Contains(err.Error(), "server answered "+tc.wantErr) {
				t.Fatalf("Present error = %v, want one with %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), d.secret) {
				t.Errorf("error reveals the TSIG secret: %v", err)
			}
			if got := d.store.lookup(strings.ToLower(tc.fqdn), dns.TypeTXT).answer; len(got) != 0 {
				t.Errorf("refused update stored %v", got)
			}
		})
	}
}

func TestDNSUpdateRaw(t *testing.T) {
	t.Parallel()
	txt := func(name string, values ...string) []dns.RR {
		var rrs []dns.RR
		for _, v := range values {
			rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
		}
		return rrs
	}
	const name = "_acme-challenge.raw.example.test."
	tests := []struct {
		name      string
		update    func(m *dns.Msg)
		wantRcode int
		wantTXT   []string // at name, after the seed "a", "b"
	}{
		{
			name:      "delete the RRset (class ANY)",
			update:    func(m *dns.Msg) { m.RemoveRRset(txt(name, "x")) },
			wantRcode: dns.RcodeSuccess,
		},
		{
			name:      "delete every RRset at the name (class ANY, type ANY)",
			update:    func(m *dns.Msg) { m.RemoveName(txt(name, "x")) },
			wantRcode: dns.RcodeSuccess,
		},
		{
			name:      "delete one RR (class NONE)",
			update:    func(m *dns.Msg) { m.Remove(txt(name, "a")) },
			wantRcode: dns.RcodeSuccess,
			wantTXT:   []string{"b"},
		},
		{
			name:      "prerequisite name not in use fails",
			update:    func(m *dns.Msg) { m.NameNotUsed(txt(name, "x")); m.Insert(txt(name, "c")) },
			wantRcode: dns.RcodeYXDomain,
			wantTXT:   []string{"a", "b"},
		},
		{
			name:      "prerequisite RRset exists holds",
			update:    func(m *dns.Msg) { m.RRsetUsed(txt(name, "x")); m.Insert(txt(name, "c")) },
			wantRcode: dns.RcodeSuccess,
			wantTXT:   []string{"a", "b", "c"},
		},
		{
			name:      "prerequisite RRset with exact values fails on a subset",
			update:    func(m *dns.Msg) { m.Used(txt(name, "a")); m.Insert(txt(name, "c")) },
			wantRcode: dns.RcodeNXRrset,
			wantTXT:   []string{"a", "b"},
		},
		{
			name:      "one RR outside the zone rejects the whole update",
			update:    func(m *dns.Msg) { m.Insert(txt(name, "c")); m.Insert(txt("x.example.org.", "c")) },
			wantRcode: dns.RcodeNotZone,
			wantTXT:   []string{"a", "b"},
		},
		{
			name: "apex SOA and NS survive deleting every RRset",
			update: func(m *dns.Msg) {
				m.RemoveName([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "example.test."}}})
			},
			wantRcode: dns.RcodeSuccess,
			wantTXT:   []string{"a", "b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startTestDNS(t)
			seed := new(dns.Msg)
			seed.SetUpdate("example.test.")
			seed.Insert(txt(name, "a", "b"))
			if r := d.signed(t, seed); r.Rcode != dns.RcodeSuccess {
				t.Fatalf("seeding: rcode %s", dns.RcodeToString[r.Rcode])
			}
			m := new(dns.Msg)
			m.SetUpdate("example.test.")
			tc.update(m)
			r := d.signed(t, m)
			if r.Rcode != tc.wantRcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
			}
			if diff := cmp.Diff(tc.wantTXT, txtValues(t, d.addr, name)); diff != "" {
				t.Errorf("TXT values (-want +got):\n%s", diff)
			}
			for _, qtype := range []uint16{dns.TypeSOA, dns.TypeNS} {
				if r := ask(t.Context(), t, d.addr, "udp", "example.test.", qtype); len(r.Answer) != 1 {
					t.Errorf("apex %s: %d answers, want 1", dns.TypeToString[qtype], len(r.Answer))
				}
			}
		})
	}
}

func TestDNSQuery(t *testing.T) {
	t.Parallel()
	d := startTestDNS(t, "example.test.", "sub.example.test.", "other.test.")
	m := new(dns.Msg)
	m.SetUpdate("example.test.")
	m.Insert([]dns.RR{
		&dns.TXT{Hdr: dns.RR_Header{Name: "_acme-challenge.deep.www.example.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"deep"}},
		&dns.CNAME{Hdr: dns.RR_Header{Name: "_acme-challenge.alias.example.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "_acme-challenge.other.test."},
	})
	if r := d.signed(t, m); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update: rcode %s", dns.RcodeToString[r.Rcode])
	}
	m = new(dns.Msg)
	m.SetUpdate("other.test.")
	m.Insert([]dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "_acme-challenge.other.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"target"}}})
	if r := d.signed(t, m); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update: rcode %s", dns.RcodeToString[r.Rcode])
	}

	tests := []struct {
		name       string
		network    string
		qname      string
		qtype      uint16
		wantRcode  int
		wantAA     bool
		wantAnswer []string // RR strings without TTL variance
		wantNS     string   // owner of the SOA in the authority section, or ""
		wantExtra  []string
	}{
		{name: "apex SOA", network: "udp", qname: "example.test.", qtype: dns.TypeSOA, wantAA: true,
			wantAnswer: []string{"example.test.\t300\tIN\tSOA\tns.example.test. hostmaster.example.test. 2 3600 600 86400 0"}},
		{name: "apex NS with glue", network: "udp", qname: "example.test.", qtype: dns.TypeNS, wantAA: true,
			wantAnswer: []string{"example.test.\t300\tIN\tNS\tns.example.test."},
			wantExtra:  []string{"ns.example.test.\t300\tIN\tA\t127.0.0.1"}},
		{name: "name server address", network: "udp", qname: "ns.example.test.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"ns.example.test.\t300\tIN\tA\t127.0.0.1"}},
		{name: "TXT over TCP", network: "tcp", qname: "_acme-challenge.deep.www.example.test.", qtype: dns.TypeTXT, wantAA: true,
			wantAnswer: []string{"_acme-challenge.deep.www.example.test.\t60\tIN\tTXT\t\"deep\""}},
		{name: "name case is kept in the answer", network: "udp", qname: "_ACME-challenge.DEEP.www.example.test.", qtype: dns.TypeTXT, wantAA: true,
			wantAnswer: []string{"_ACME-challenge.DEEP.www.example.test.\t60\tIN\tTXT\t\"deep\""}},
		{name: "NXDOMAIN", network: "udp", qname: "nope.example.test.", qtype: dns.TypeTXT, wantRcode: dns.RcodeNameError, wantAA: true, wantNS: "example.test."},
		{name: "NODATA at an existing name", network: "udp", qname: "ns.example.test.", qtype: dns.TypeTXT, wantAA: true, wantNS: "example.test."},
		{name: "NODATA at an empty non-terminal", network: "tcp", qname: "www.example.test.", qtype: dns.TypeTXT, wantAA: true, wantNS: "example.test."},
		{name: "CNAME followed into another served zone", network: "udp", qname: "_acme-challenge.alias.example.test.", qtype: dns.TypeTXT, wantAA: true,
			wantAnswer: []string{
				"_acme-challenge.alias.example.test.\t60\tIN\tCNAME\t_acme-challenge.other.test.",
				"_acme-challenge.other.test.\t60\tIN\tTXT\t\"target\"",
			}},
		{name: "CNAME asked for itself", network: "udp", qname: "_acme-challenge.alias.example.test.", qtype: dns.TypeCNAME, wantAA: true,
			wantAnswer: []string{"_acme-challenge.alias.example.test.\t60\tIN\tCNAME\t_acme-challenge.other.test."}},
		{name: "closest zone answers", network: "udp", qname: "x.sub.example.test.", qtype: dns.TypeTXT, wantRcode: dns.RcodeNameError, wantAA: true, wantNS: "sub.example.test."},
		{name: "outside every zone", network: "udp", qname: "example.org.", qtype: dns.TypeTXT, wantRcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := ask(t.Context(), t, d.addr, tc.network, tc.qname, tc.qtype)
			if r.Rcode != tc.wantRcode || r.Authoritative != tc.wantAA {
				t.Errorf("rcode %s aa=%t, want %s aa=%t", dns.RcodeToString[r.Rcode], r.Authoritative, dns.RcodeToString[tc.wantRcode], tc.wantAA)
			}
			if diff := cmp.Diff(tc.wantAnswer, rrStrings(r.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantExtra, rrStrings(r.Extra)); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
			var gotNS string
			if len(r.Ns) == 1 {
				if soa, ok := r.Ns[0].(*dns.SOA); ok {
					gotNS = soa.Hdr.Name
				}
			}
			if gotNS != tc.wantNS || len(r.Ns) > 1 {
				t.Errorf("authority = %v, want the SOA of %q", r.Ns, tc.wantNS)
			}
		})
	}
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rr.String())
	}
	return out
}

func TestDNSConcurrentUpdates(t *testing.T) {
	t.Parallel()
	d := startTestDNS(t)
	p := d.goodProvider(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			fqdn := fmt.Sprintf("_acme-challenge.h%d.example.test.", i)
			if err := p.Present(t.Context(), "example.test", fqdn, []string{"v", fmt.Sprint(i)}); err != nil {
				errs <- err
				return
			}
			if err := p.CleanUp(t.Context(), "example.test", fqdn, []string{"v"}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range n {
		fqdn := fmt.Sprintf("_acme-challenge.h%d.example.test.", i)
		if diff := cmp.Diff([]string{fmt.Sprint(i)}, txtValues(t, d.addr, fqdn)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", fqdn, diff)
		}
	}
	// Every change bumped the serial: 1 + 2 per name.
	soa := d.store.soa("example.test.").(*dns.SOA)
	if soa.Serial != 1+2*n {
		t.Errorf("SOA serial = %d, want %d", soa.Serial, 1+2*n)
	}
}
