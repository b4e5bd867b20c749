package devstack

import (
	"log/slog"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// fakeWriter is a dns.ResponseWriter that keeps what is written, with a
// chosen TSIG verification result.
type fakeWriter struct {
	tsigStatus error
	tcp        bool
	written    [][]byte
}

func (w *fakeWriter) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000}
}
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	w.written = append(w.written, b)
	return nil
}
func (w *fakeWriter) Write(b []byte) (int, error) {
	w.written = append(w.written, b)
	return len(b), nil
}
func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return w.tsigStatus }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

// FuzzServeDNS feeds arbitrary messages to the handler, as if their TSIG
// had verified, and checks that it answers each with one message and never
// panics.
func FuzzServeDNS(f *testing.F) {
	seeds := []*dns.Msg{}
	q := new(dns.Msg)
	q.SetQuestion("_acme-challenge.example.test.", dns.TypeTXT)
	q.SetEdns0(1232, false)
	seeds = append(seeds, q)
	u := new(dns.Msg)
	u.SetUpdate("example.test.")
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: "_acme-challenge.example.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"v"}}
	cname := &dns.CNAME{Hdr: dns.RR_Header{Name: "a.example.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "a.example.test."}
	u.Insert([]dns.RR{txt, cname})
	u.Remove([]dns.RR{txt})
	u.RRsetUsed([]dns.RR{txt})
	u.SetTsig(TSIGKeyName, dns.HmacSHA256, 300, 0)
	seeds = append(seeds, u)
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		m := new(dns.Msg)
		if err := m.Unpack(raw); err != nil {
			return
		}
		s := &dnsServer{
			keyName: TSIGKeyName, algorithm: dns.HmacSHA256,
			store: newStore([]string{"example.test.", "sub.example.test."}), log: slog.New(slog.DiscardHandler),
		}
		for range 2 { // the second pass sees what the first one stored
			w := &fakeWriter{tcp: tcp}
			s.ServeDNS(w, m)
			if len(w.written) != 1 {
				t.Fatalf("wrote %d messages, want 1", len(w.written))
			}
			var r dns.Msg
			if err := r.Unpack(w.written[0]); err != nil {
				t.Fatalf("reply does not unpack: %v", err)
			}
			if r.Id != m.Id || !r.Response {
				t.Fatalf("reply id %d response=%t, want id %d response=true", r.Id, r.Response, m.Id)
			}
		}
	})
}
