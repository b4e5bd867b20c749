package issuer

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// txtServer is a small authoritative DNS server for the tests: it answers
// TXT queries from the records the test solver sets, and NOERROR with no
// answer (plus an SOA) for anything else.
type txtServer struct {
	addr string

	mu      sync.Mutex
	records map[string][]string // fqdn (lowercase, trailing dot) -> values
}

func startTXTServer(t testing.TB) *txtServer {
	t.Helper()
	// Pebble's VA asks over TCP, the solver's check over UDP: serve both on
	// one port.
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	for range 10 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			continue
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		_ = pc.Close()
	}
	if err != nil {
		t.Fatalf("listening for DNS: %v", err)
	}
	s := &txtServer{addr: pc.LocalAddr().String(), records: map[string][]string{}}
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)},
		{Listener: l, Handler: dns.HandlerFunc(s.serve)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

func (s *txtServer) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) == 1 {
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		s.mu.Lock()
		values := slices.Clone(s.records[name])
		s.mu.Unlock()
		if q.Qtype == dns.TypeTXT {
			for _, v := range values {
				m.Answer = append(m.Answer, &dns.TXT{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0},
					Txt: []string{v},
				})
			}
		}
		if len(m.Answer) == 0 {
			m.Ns = append(m.Ns, &dns.SOA{
				Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 0},
				Ns:  "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: 0,
			})
		}
	}
	_ = w.WriteMsg(m)
}

func (s *txtServer) add(fqdn, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[fqdn] = append(s.records[fqdn], value)
}

func (s *txtServer) remove(fqdn, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[fqdn] = slices.DeleteFunc(s.records[fqdn], func(v string) bool { return v == value })
	if len(s.records[fqdn]) == 0 {
		delete(s.records, fqdn)
	}
}

// lookup asks the server over the wire, as the CA does.
func (s *txtServer) lookup(ctx context.Context, fqdn string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(fqdn, dns.TypeTXT)
	in, _, err := new(dns.Client).ExchangeContext(ctx, m, s.addr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

func (s *txtServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

func challengeFQDN(domain string) string { return "_acme-challenge." + domain + "." }

// testSolver is an issuer.Solver writing to a txtServer. It records what it
// was called with.
type testSolver struct {
	dns *txtServer
	// corrupt makes Present publish a wrong value.
	corrupt bool
	// failPresent makes Present fail after publishing.
	failPresent error
	// beforeWait, when set, runs at the start of Wait.
	beforeWait func()
	// failCleanUp makes CleanUp fail after removing the records.
	failCleanUp error

	mu        sync.Mutex
	presented []Challenge
	cleaned   []Challenge
	cleanups  int
}

var _ Solver = (*testSolver)(nil)

func (s *testSolver) Present(ctx context.Context, challenges []Challenge) error {
	s.mu.Lock()
	s.presented = append(s.presented, challenges...)
	s.mu.Unlock()
	for _, c := range challenges {
		v := c.Value
		if s.corrupt {
			v = "wrong-" + v[:10]
		}
		s.dns.add(challengeFQDN(c.Domain), v)
	}
	return s.failPresent
}

// Wait polls the server until every value is served.
func (s *testSolver) Wait(ctx context.Context, challenges []Challenge) error {
	if s.beforeWait != nil {
		s.beforeWait()
	}
	for _, c := range challenges {
		for {
			vals, err := s.dns.lookup(ctx, challengeFQDN(c.Domain))
			if err == nil && (s.corrupt || slices.Contains(vals, c.Value)) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

func (s *testSolver) CleanUp(ctx context.Context, challenges []Challenge) error {
	if err := ctx.Err(); err != nil {
		return errors.New("cleanup got a done context")
	}
	s.mu.Lock()
	s.cleanups++
	s.cleaned = append(s.cleaned, challenges...)
	s.mu.Unlock()
	for _, c := range challenges {
		v := c.Value
		if s.corrupt {
			v = "wrong-" + v[:10]
		}
		s.dns.remove(challengeFQDN(c.Domain), v)
	}
	return s.failCleanUp
}

// memAccounts is an in-memory AccountStore.
type memAccounts struct {
	mu    sync.Mutex
	accts map[string]Account
	saves int
}

var _ AccountStore = (*memAccounts)(nil)

func newMemAccounts() *memAccounts { return &memAccounts{accts: map[string]Account{}} }

func (m *memAccounts) Account(_ context.Context, dir string) (Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.accts[dir]
	if !ok {
		return Account{}, ErrNoAccount
	}
	return a, nil
}

func (m *memAccounts) SaveAccount(_ context.Context, a Account) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.accts[a.DirectoryURL] = a
	m.saves++
	return nil
}

func (m *memAccounts) saveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}

// stepRecorder is a Progress that records the steps.
type stepRecorder struct {
	mu    sync.Mutex
	steps []operation.Step
}

func (r *stepRecorder) progress(_ context.Context, s operation.Step) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

func (r *stepRecorder) got() []operation.Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.steps)
}

// env is a Pebble CA validating against a txtServer.
type env struct {
	dns    *txtServer
	pebble *testenv.Pebble
}

func newEnv(t testing.TB, opts testenv.PebbleOptions) *env {
	t.Helper()
	d := startTXTServer(t)
	opts.DNSServer = d.addr
	return &env{dns: d, pebble: testenv.StartPebble(t, opts)}
}

func (e *env) issuer(accounts AccountStore) *Issuer {
	return New(Config{
		DirectoryURL: e.pebble.DirectoryURL,
		Contacts:     []string{"admin@example.test"},
		HTTPClient:   e.pebble.HTTPClient(),
		UserAgent:    "certkeeper-test",
	}, accounts)
}

func (e *env) solver() *testSolver { return &testSolver{dns: e.dns} }
