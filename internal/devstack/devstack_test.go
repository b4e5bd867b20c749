package devstack

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	certdns "github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rfc2136"
	"github.com/certkeeper/certkeeper/internal/issuer"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// memAccounts is an in-memory issuer.AccountStore.
type memAccounts struct {
	mu    sync.Mutex
	accts map[string]issuer.Account
}

func (m *memAccounts) Account(_ context.Context, dir string) (issuer.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.accts[dir]
	if !ok {
		return issuer.Account{}, issuer.ErrNoAccount
	}
	return a, nil
}

func (m *memAccounts) SaveAccount(_ context.Context, a issuer.Account) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.accts == nil {
		m.accts = make(map[string]issuer.Account)
	}
	m.accts[a.DirectoryURL] = a
	return nil
}

// countingSolver counts the challenges presented through it.
type countingSolver struct {
	issuer.Solver
	mu        sync.Mutex
	presented int
}

func (c *countingSolver) Present(ctx context.Context, chs []issuer.Challenge) error {
	c.mu.Lock()
	c.presented += len(chs)
	c.mu.Unlock()
	return c.Solver.Present(ctx, chs)
}

// solverFor builds the production DNS-01 path against the stack: the
// rfc2136 provider, the registry and its solver, checking propagation at
// the stack's DNS server.
func solverFor(t *testing.T, s *Stack) *countingSolver {
	t.Helper()
	p, err := rfc2136.New(rfc2136.Config{
		Nameserver: s.DNSAddr, TSIGKeyName: s.TSIGKeyName, TSIGAlgorithm: s.TSIGAlgorithm, TSIGSecret: s.TSIGSecret,
	})
	if err != nil {
		t.Fatalf("rfc2136.New: %v", err)
	}
	reg, err := certdns.NewRegistry(
		[]certdns.Named{{Name: "dev", Provider: p, Zones: s.Zones}},
		certdns.Options{Resolvers: []string{s.DNSAddr}},
	)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return &countingSolver{Solver: reg.Solver("dev", "")}
}

func TestStackIssues(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()

	begin := time.Now()
	s, err := Start(t.Context(), Options{Dir: dir, Logger: logger, NonceRejectPercent: 10})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %s", time.Since(begin))
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close()
		}
	})

	// The files hold what the stack says.
	rootFile, err := os.ReadFile(s.IssuerRootPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rootFile, s.IssuerRootPEM) {
		t.Error("IssuerRootPath does not hold IssuerRootPEM")
	}
	caBundle, err := os.ReadFile(s.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(caBundle); block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("CABundle %s is not a PEM certificate", s.CABundle)
	}
	if diff := cmp.Diff([]string{"example.test"}, s.Zones); diff != "" {
		t.Errorf("Zones (-want +got):\n%s", diff)
	}

	// The ACME server is trusted through CABundle alone.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caBundle)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client := &http.Client{Transport: tr}
	iss := issuer.New(issuer.Config{DirectoryURL: s.DirectoryURL, HTTPClient: client, DefaultProfile: DefaultProfile, Logger: logger}, &memAccounts{})

	names := []string{"example.test", "*.example.test", "www.example.test", "api.example.test"}
	for round := range 2 {
		solver := solverFor(t, s)
		begin = time.Now()
		cert, err := iss.Obtain(t.Context(), issuer.Request{Names: names, KeyType: "EC", Curve: "P-256"}, solver, nil)
		if err != nil {
			t.Fatalf("Obtain (round %d): %v", round, err)
		}
		t.Logf("issuance %d took %s", round, time.Since(begin))
		verifyChain(t, cert, s.IssuerRootPEM)
		if diff := cmp.Diff(names, cert.Leaf.DNSNames); diff != "" {
			t.Errorf("SANs (-want +got):\n%s", diff)
		}
		if got := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore).Round(time.Hour); got != 90*24*time.Hour {
			t.Errorf("default profile validity = %s, want 90 days", got)
		}
		// Authorization reuse is off: every order is validated afresh. Pebble
		// v2.10.3 still reuses an authorization when rand.Intn(100) draws 0
		// (wfe.go: `rand.Intn(100) > authzReusePercent`), 1 % of the time
		// per authorization; Pebble's default of 50 % would reuse about half.
		// So at most one of the four may be reused.
		if solver.presented < len(names)-1 || solver.presented > len(names) {
			t.Errorf("round %d presented %d challenges, want %d (or one fewer: Pebble's 1 %% reuse)",
				round, solver.presented, len(names))
		}
	}

	// The shortlived profile.
	begin = time.Now()
	cert, err := iss.Obtain(t.Context(), issuer.Request{Names: []string{"short.example.test"}, KeyType: "EC", Profile: "shortlived"}, solverFor(t, s), nil)
	if err != nil {
		t.Fatalf("Obtain shortlived: %v", err)
	}
	if got := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore).Round(time.Hour); got != 6*24*time.Hour {
		t.Errorf("shortlived profile validity = %s, want 6 days", got)
	}
	t.Logf("shortlived issuance took %s", time.Since(begin))
	profiles, err := iss.Profiles(t.Context())
	if err != nil {
		t.Fatalf("Profiles: %v", err)
	}
	if _, ok := profiles["shortlived"]; !ok || len(profiles) != 2 {
		t.Errorf("profiles = %v, want default and shortlived", profiles)
	}

	// The management interface gives the root but not the CA's keys.
	checkManagement(t, s, s.HTTPClient())

	// Pebble's settings took effect and its log reached the logger.
	out := logs.String()
	for _, want := range []string{
		"Configured to reject 10% of good nonces",
		"Configured to attempt authz reuse for each identifier 0% of the time",
		"Disabling random VA sleeps",
		"Using custom DNS resolver for ACME challenges: " + s.DNSAddr,
		"component=pebble",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(out, s.TSIGSecret.Reveal()) {
		t.Error("log reveals the TSIG secret")
	}

	// Close frees every port.
	addrs := []string{hostPort(t, s.DirectoryURL), hostPort(t, s.ManagementURL)}
	begin = time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	t.Logf("Close took %s", time.Since(begin))
	closed = true
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("after Close, %s is still taken: %v", a, err)
			continue
		}
		_ = l.Close()
	}
	pc, err := net.ListenPacket("udp", s.DNSAddr)
	if err != nil {
		t.Errorf("after Close, UDP %s is still taken: %v", s.DNSAddr, err)
	} else {
		_ = pc.Close()
	}
	l, err := net.Listen("tcp", s.DNSAddr)
	if err != nil {
		t.Errorf("after Close, TCP %s is still taken: %v", s.DNSAddr, err)
	} else {
		_ = l.Close()
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// verifyChain checks the leaf against root with the chain the CA sent as
// intermediates.
func verifyChain(t *testing.T, cert *issuer.Certificate, root []byte) {
	t.Helper()
	inter := x509.NewCertPool()
	if !inter.AppendCertsFromPEM(cert.ChainPEM) {
		t.Fatal("ChainPEM holds no certificate")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(root) {
		t.Fatal("IssuerRootPEM holds no certificate")
	}
	for _, name := range cert.Leaf.DNSNames {
		if strings.HasPrefix(name, "*.") {
			name = "x" + name[1:]
		}
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name}); err != nil {
			t.Errorf("verifying leaf for %s: %v", name, err)
		}
	}
}

func checkManagement(t *testing.T, s *Stack, client *http.Client) {
	t.Helper()
	tests := []struct {
		path       string
		wantStatus int
		wantBody   []byte
	}{
		{path: "/roots/0", wantStatus: http.StatusOK, wantBody: s.IssuerRootPEM},
		{path: "/intermediates/0", wantStatus: http.StatusOK},
		{path: "/root-keys/0", wantStatus: http.StatusNotFound},
		{path: "/intermediate-keys/0", wantStatus: http.StatusNotFound},
	}
	for _, tc := range tests {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.ManagementURL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.wantStatus {
			t.Errorf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.wantStatus)
		}
		if tc.wantBody != nil && !bytes.Equal(body, tc.wantBody) {
			t.Errorf("GET %s: body differs from IssuerRootPEM", tc.path)
		}
		if bytes.Contains(body, []byte("PRIVATE KEY")) {
			t.Errorf("GET %s returned a private key", tc.path)
		}
	}
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestStartOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "no directory", opts: Options{}, wantErr: "no directory"},
		{name: "bad zone", opts: Options{Dir: t.TempDir(), Zones: []string{"exa mple..test"}}, wantErr: `zone "exa mple..test" is not a domain name`},
		{name: "root zone", opts: Options{Dir: t.TempDir(), Zones: []string{"."}}, wantErr: `zone "." is not a domain name`},
		{name: "nonce percent", opts: Options{Dir: t.TempDir(), NonceRejectPercent: 101}, wantErr: "nonce reject percent 101"},
		{name: "key algorithm", opts: Options{Dir: t.TempDir(), CAKeyAlgorithm: "dsa"}, wantErr: `CA key algorithm "dsa"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Start(t.Context(), tc.opts)
			if err == nil {
				_ = s.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestStartZonesAndCancel(t *testing.T) {
	t.Parallel()
	t.Run("several zones, normalized", func(t *testing.T) {
		t.Parallel()
		s, err := Start(t.Context(), Options{Dir: t.TempDir(), Zones: []string{"Dev.Test.", "example.test", "dev.test"}, CAKeyAlgorithm: "rsa"})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		defer s.Close()
		if diff := cmp.Diff([]string{"dev.test", "example.test"}, s.Zones); diff != "" {
			t.Errorf("Zones (-want +got):\n%s", diff)
		}
		for _, z := range s.Zones {
			r := ask(t.Context(), t, s.DNSAddr, "udp", z+".", 6 /* SOA */)
			if len(r.Answer) != 1 || !r.Authoritative {
				t.Errorf("SOA of %s: %v aa=%t", z, r.Answer, r.Authoritative)
			}
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		s, err := Start(ctx, Options{Dir: t.TempDir()})
		if err == nil {
			_ = s.Close()
			t.Fatal("Start succeeded with a cancelled context")
		}
	})
}

func TestStartRestoresEnvironment(t *testing.T) {
	t.Setenv("PEBBLE_AUTHZREUSE", "77")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	s, err := Start(t.Context(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Close()
	got := map[string]string{"PEBBLE_AUTHZREUSE": os.Getenv("PEBBLE_AUTHZREUSE"), "PEBBLE_VA_ALWAYS_VALID": os.Getenv("PEBBLE_VA_ALWAYS_VALID")}
	_, nonceSet := os.LookupEnv("PEBBLE_WFE_NONCEREJECT")
	if diff := cmp.Diff(map[string]string{"PEBBLE_AUTHZREUSE": "77", "PEBBLE_VA_ALWAYS_VALID": "1"}, got); diff != "" || nonceSet {
		t.Errorf("environment after Start (-want +got):\n%s\nPEBBLE_WFE_NONCEREJECT set: %t", diff, nonceSet)
	}
}

// BenchmarkStart measures Start and Close with each CA key algorithm.
func BenchmarkStart(b *testing.B) {
	for _, alg := range []string{"ecdsa", "rsa"} {
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				s, err := Start(b.Context(), Options{Dir: b.TempDir(), CAKeyAlgorithm: alg})
				if err != nil {
					b.Fatal(err)
				}
				_ = s.Close()
			}
		})
	}
}
