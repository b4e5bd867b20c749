package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

var allSteps = []operation.Step{
	operation.StepOrdering,
	operation.StepPresenting,
	operation.StepPropagation,
	operation.StepValidating,
	operation.StepFinalizing,
}

func TestObtain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	iss := e.issuer(newMemAccounts())
	roots, err := e.pebble.IssuerRoots(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		req     Request
		wantKey func(crypto.PublicKey) bool
	}{
		{
			name: "RSA 2048 apex and wildcard",
			req:  Request{Names: []string{"example.test", "*.example.test"}, KeyType: "RSA", KeySize: 2048},
			wantKey: func(k crypto.PublicKey) bool {
				r, ok := k.(*rsa.PublicKey)
				return ok && r.N.BitLen() == 2048
			},
		},
		{
			name: "EC P-256 apex and wildcard",
			req:  Request{Names: []string{"p256.example.test", "*.p256.example.test"}, KeyType: "EC", Curve: "P-256"},
			wantKey: func(k crypto.PublicKey) bool {
				c, ok := k.(*ecdsa.PublicKey)
				return ok && c.Curve == elliptic.P256()
			},
		},
		{
			name: "EC P-384 apex and wildcard",
			req:  Request{Names: []string{"p384.example.test", "*.p384.example.test"}, KeyType: "EC", Curve: "P-384"},
			wantKey: func(k crypto.PublicKey) bool {
				c, ok := k.(*ecdsa.PublicKey)
				return ok && c.Curve == elliptic.P384()
			},
		},
		{
			name: "names keep their order",
			req:  Request{Names: []string{"www.order.test", "api.order.test", "a.order.test"}, KeyType: "EC"},
			wantKey: func(k crypto.PublicKey) bool {
				_, ok := k.(*ecdsa.PublicKey)
				return ok
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			solver := e.solver()
			var rec stepRecorder
			cert, err := iss.Obtain(t.Context(), tc.req, solver, rec.progress)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			if diff := cmp.Diff(allSteps, rec.got()); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.req.Names, cert.Leaf.DNSNames); diff != "" {
				t.Errorf("SANs (-want +got):\n%s", diff)
			}
			if got := cert.Leaf.Subject.CommonName; got != tc.req.Names[0] {
				t.Errorf("CN = %q, want %q", got, tc.req.Names[0])
			}
			if !tc.wantKey(cert.Leaf.PublicKey) {
				t.Errorf("leaf key is %T, not the requested type", cert.Leaf.PublicKey)
			}
			checkCertificate(t, cert, roots)

			// One challenge per identifier; apex and wildcard share a TXT name.
			solver.mu.Lock()
			presented, cleaned, cleanups := solver.presented, solver.cleaned, solver.cleanups
			solver.mu.Unlock()
			if len(presented) != len(tc.req.Names) {
				t.Errorf("presented %d challenges, want %d", len(presented), len(tc.req.Names))
			}
			if cleanups != 1 {
				t.Errorf("CleanUp called %d times, want 1", cleanups)
			}
			if diff := cmp.Diff(presented, cleaned); diff != "" {
				t.Errorf("cleaned challenges differ from presented (-presented +cleaned):\n%s", diff)
			}
			if strings.HasPrefix(tc.req.Names[1], "*.") {
				if presented[0].Domain != presented[1].Domain || presented[0].Value == presented[1].Value ||
					presented[0].Wildcard == presented[1].Wildcard {
					t.Errorf("apex+wildcard challenges = %+v, want one domain with two values, one wildcard", presented)
				}
			}
			for _, c := range presented {
				if vals, _ := e.dns.lookup(t.Context(), challengeFQDN(c.Domain)); len(vals) != 0 {
					t.Errorf("TXT records left at %s: %q", challengeFQDN(c.Domain), vals)
				}
			}
		})
	}
}

// checkCertificate verifies the result's parts against each other and the
// CA's root.
func checkCertificate(t *testing.T, cert *Certificate, roots []byte) {
	t.Helper()
	if cert.URL == "" {
		t.Error("certificate URL is empty")
	}
	block, _ := pem.Decode(cert.CertPEM)
	if block == nil || !cmp.Equal(block.Bytes, cert.Leaf.Raw) {
		t.Error("CertPEM does not hold the leaf")
	}
	inter := x509.NewCertPool()
	if !inter.AppendCertsFromPEM(cert.ChainPEM) {
		t.Fatal("ChainPEM holds no certificate")
	}
	rootPool := x509.NewCertPool()
	if !rootPool.AppendCertsFromPEM(roots) {
		t.Fatal("Pebble root is not PEM")
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{
		Roots: rootPool, Intermediates: inter, DNSName: cert.Leaf.DNSNames[0],
	}); err != nil {
		t.Errorf("verifying leaf against chain and Pebble root: %v", err)
	}
	key, err := ParseKeyPEM(cert.KeyPEM)
	if err != nil {
		t.Fatalf("ParseKeyPEM(KeyPEM): %v", err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if !key.Public().(equaler).Equal(cert.Leaf.PublicKey) || !cert.Key.Public().(equaler).Equal(cert.Leaf.PublicKey) {
		t.Error("Key/KeyPEM do not match the leaf")
	}
}

func TestObtainFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{BlockedDomains: []string{"blocked.test"}})
	iss := e.issuer(newMemAccounts())

	tests := []struct {
		name          string
		names         []string
		profile       string
		setup         func(s *testSolver, cancel context.CancelFunc)
		wantStep      operation.Step
		wantType      string
		wantIn        []string
		wantSteps     []operation.Step
		wantCleanups  int
		wantPresented bool
	}{
		{
			name:     "wrong TXT value",
			names:    []string{"wrong.example.test"},
			setup:    func(s *testSolver, _ context.CancelFunc) { s.corrupt = true },
			wantStep: operation.StepValidating,
			wantType: acme.UnauthorizedErrorType,
			wantIn: []string{"_acme-challenge.wrong.example.test", "Correct value not found for DNS challenge",
				acme.UnauthorizedErrorType},
			wantSteps:     allSteps[:4],
			wantCleanups:  1,
			wantPresented: true,
		},
		{
			name:  "cleanup fails after validation failed",
			names: []string{"cleanup.example.test"},
			setup: func(s *testSolver, _ context.CancelFunc) {
				s.corrupt = true
				s.failCleanUp = errors.New("provider API down")
			},
			wantStep:      operation.StepValidating,
			wantType:      acme.UnauthorizedErrorType,
			wantIn:        []string{"Correct value not found", "removing DNS records: provider API down"},
			wantSteps:     allSteps[:4],
			wantCleanups:  1,
			wantPresented: true,
		},
		{
			name:          "present fails",
			names:         []string{"present.example.test"},
			setup:         func(s *testSolver, _ context.CancelFunc) { s.failPresent = errors.New("zone is read-only") },
			wantStep:      operation.StepPresenting,
			wantIn:        []string{"presenting DNS records", "zone is read-only"},
			wantSteps:     allSteps[:2],
			wantCleanups:  1,
			wantPresented: true,
		},
		{
			name:  "cancelled while waiting for propagation",
			names: []string{"cancel.example.test", "*.cancel.example.test"},
			setup: func(s *testSolver, cancel context.CancelFunc) {
				s.beforeWait = cancel
			},
			wantStep:      operation.StepPropagation,
			wantIn:        []string{"context canceled"},
			wantSteps:     allSteps[:3],
			wantCleanups:  1,
			wantPresented: true,
		},
		{
			name:      "blocked domain",
			names:     []string{"www.blocked.test"},
			wantStep:  operation.StepOrdering,
			wantType:  acme.RejectedIdentifierErrorType,
			wantIn:    []string{"issuance is forbidden by policy", "www.blocked.test"},
			wantSteps: allSteps[:1],
		},
		{
			name:      "unknown profile",
			names:     []string{"profile.example.test"},
			profile:   "nonexistent",
			wantStep:  operation.StepOrdering,
			wantIn:    []string{`"nonexistent"`, "default, shortlived"},
			wantSteps: allSteps[:1],
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			solver := e.solver()
			if tc.setup != nil {
				tc.setup(solver, cancel)
			}
			var rec stepRecorder
			_, err := iss.Obtain(ctx, Request{Names: tc.names, KeyType: "EC", Profile: tc.profile}, solver, rec.progress)
			if err == nil {
				t.Fatal("Obtain succeeded, want error")
			}
			t.Logf("error: %v", err)
			pe, ok := errors.AsType[*ProblemError](err)
			if !ok {
				t.Fatalf("error %v is not a *ProblemError", err)
			}
			if pe.Step != tc.wantStep || pe.Type != tc.wantType {
				t.Errorf("step, type = %q, %q; want %q, %q (error: %v)", pe.Step, pe.Type, tc.wantStep, tc.wantType, err)
			}
			for _, want := range tc.wantIn {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if diff := cmp.Diff(tc.wantSteps, rec.got()); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			solver.mu.Lock()
			cleanups, presented := solver.cleanups, len(solver.presented) > 0
			solver.mu.Unlock()
			if cleanups != tc.wantCleanups || presented != tc.wantPresented {
				t.Errorf("cleanups, presented = %d, %v; want %d, %v", cleanups, presented, tc.wantCleanups, tc.wantPresented)
			}
			for _, n := range tc.names {
				fqdn := challengeFQDN(strings.TrimPrefix(n, "*."))
				if vals, _ := e.dns.lookup(t.Context(), fqdn); len(vals) != 0 {
					t.Errorf("TXT records left at %s: %q", fqdn, vals)
				}
			}
		})
	}
}

func TestObtainCleanupFailureAfterSuccessIsNotAnError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	iss := e.issuer(newMemAccounts())
	solver := e.solver()
	solver.failCleanUp = errors.New("provider API down")
	cert, err := iss.Obtain(t.Context(), Request{Names: []string{"cleanfail.example.test"}, KeyType: "EC"}, solver, nil)
	if err != nil {
		t.Fatalf("Obtain = %v, want success despite the cleanup failure", err)
	}
	if cert.Leaf.DNSNames[0] != "cleanfail.example.test" {
		t.Errorf("SANs = %q", cert.Leaf.DNSNames)
	}
	solver.mu.Lock()
	defer solver.mu.Unlock()
	if solver.cleanups != 1 {
		t.Errorf("CleanUp called %d times, want 1", solver.cleanups)
	}
}

func TestObtainHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{RetryAfterAuthz: 1, RetryAfterOrder: 1})
	iss := e.issuer(newMemAccounts())
	type wait struct {
		header            string
		retryAfter, delay time.Duration
	}
	var (
		mu    sync.Mutex
		waits []wait
	)
	iss.observeWait = func(header string, retryAfter, delay time.Duration) {
		mu.Lock()
		waits = append(waits, wait{header, retryAfter, delay})
		mu.Unlock()
	}
	cert, err := iss.Obtain(t.Context(), Request{Names: []string{"retry.example.test"}, KeyType: "EC"}, e.solver(), nil)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	if cert.Leaf.DNSNames[0] != "retry.example.test" {
		t.Errorf("SANs = %q", cert.Leaf.DNSNames)
	}
	mu.Lock()
	defer mu.Unlock()
	sawHeader := false
	for _, w := range waits {
		if w.header != "" {
			sawHeader = true
		}
		if w.delay < w.retryAfter {
			t.Errorf("waited %v after Retry-After %q (%v)", w.delay, w.header, w.retryAfter)
		}
	}
	if !sawHeader {
		t.Errorf("no wait followed a Retry-After header; waits: %+v", waits)
	}
}

func TestObtainNonceRejection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{NonceRejectPercent: 20})
	iss := e.issuer(newMemAccounts())
	for _, names := range [][]string{
		{"nonce1.example.test", "*.nonce1.example.test"},
		{"nonce2.example.test"},
	} {
		start := time.Now()
		cert, err := iss.Obtain(t.Context(), Request{Names: names, KeyType: "EC"}, e.solver(), nil)
		if err != nil {
			t.Fatalf("Obtain(%q): %v", names, err)
		}
		if diff := cmp.Diff(names, cert.Leaf.DNSNames); diff != "" {
			t.Errorf("SANs (-want +got):\n%s", diff)
		}
		t.Logf("Obtain(%q) with 20%% nonce rejection took %v", names, time.Since(start))
	}
}

func TestObtainProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	iss := e.issuer(newMemAccounts())

	profiles, err := iss.Profiles(t.Context())
	if err != nil {
		t.Fatalf("Profiles: %v", err)
	}
	if diff := cmp.Diff([]string{"default", "shortlived"}, slices.Sorted(maps.Keys(profiles))); diff != "" {
		t.Errorf("profiles (-want +got):\n%s", diff)
	}

	cert, err := iss.Obtain(t.Context(), Request{Names: []string{"short.example.test"}, KeyType: "EC", Profile: "shortlived"}, e.solver(), nil)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	// Pebble's shortlived profile is 518400 s; its validity is inclusive of
	// the last second.
	if got := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore); got > 518400*time.Second || got < 518399*time.Second {
		t.Errorf("validity = %v, want the shortlived profile's 144h", got)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	iss := e.issuer(newMemAccounts())
	cert, err := iss.Obtain(t.Context(), Request{Names: []string{"revoke.example.test"}, KeyType: "RSA", KeySize: 2048}, e.solver(), nil)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	serial := cert.Leaf.SerialNumber.Text(16)
	if got, err := e.pebble.CertStatus(t.Context(), serial); err != nil || got != "Valid" {
		t.Fatalf("CertStatus before revoking = %q, %v; want Valid", got, err)
	}
	if err := iss.Revoke(t.Context(), cert.Leaf.Raw, 4); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got, err := e.pebble.CertStatus(t.Context(), serial); err != nil || got != "Revoked" {
		t.Errorf("CertStatus after revoking = %q, %v; want Revoked", got, err)
	}

	err = iss.Revoke(t.Context(), cert.Leaf.Raw, 4)
	pe, ok := errors.AsType[*ProblemError](err)
	if !ok || pe.Type != acme.AlreadyRevokedErrorType || pe.Detail == "" || !strings.Contains(err.Error(), pe.Detail) {
		t.Errorf("second Revoke = %v, want a *ProblemError of type alreadyRevoked with the CA's detail", err)
	}
}

func TestObtainReusesProvidedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	iss := e.issuer(newMemAccounts())
	key, err := GenerateKey("EC", 0, "P-384")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		cert, err := iss.Obtain(t.Context(), Request{Names: []string{"reuse.example.test"}, KeyType: "RSA", Key: key}, e.solver(), nil)
		if err != nil {
			t.Fatalf("Obtain: %v", err)
		}
		if cert.Key != key || !key.Public().(*ecdsa.PublicKey).Equal(cert.Leaf.PublicKey) {
			t.Errorf("certificate is not for the provided key")
		}
	}
}

func TestAccountReregistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	store := newMemAccounts()
	iss := e.issuer(store)
	if _, err := iss.Obtain(t.Context(), Request{Names: []string{"acct.example.test"}, KeyType: "EC"}, e.solver(), nil); err != nil {
		t.Fatalf("Obtain before restart: %v", err)
	}
	before, err := store.Account(t.Context(), e.pebble.DirectoryURL)
	if err != nil {
		t.Fatal(err)
	}

	e.pebble.Restart(t) // Pebble forgets every account

	// Concurrent calls on the stale account re-register once.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for n := range errs {
		wg.Go(func() {
			_, errs[n] = iss.Obtain(t.Context(), Request{Names: []string{"acct.example.test"}, KeyType: "EC"}, e.solver(), nil)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("Obtain after restart: %v", err)
		}
	}
	after, err := store.Account(t.Context(), e.pebble.DirectoryURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := store.saveCount(); got != 2 {
		t.Errorf("accounts saved = %d, want 2 (first registration, one re-registration)", got)
	}
	if after.URI == before.URI {
		t.Errorf("account URI unchanged after re-registration: %s", after.URI)
	}
	if diff := cmp.Diff([]string{"mailto:admin@example.test"}, after.Contacts); diff != "" {
		t.Errorf("contacts (-want +got):\n%s", diff)
	}

	// A new Issuer on the same store loads the stale account after another
	// restart and also recovers.
	e.pebble.Restart(t)
	if _, err := e.issuer(store).Obtain(t.Context(), Request{Names: []string{"acct2.example.test"}, KeyType: "EC"}, e.solver(), nil); err != nil {
		t.Fatalf("Obtain by a new issuer after restart: %v", err)
	}
	if got := store.saveCount(); got != 3 {
		t.Errorf("accounts saved = %d, want 3", got)
	}
}

// BenchmarkObtain measures one issuance of an apex and wildcard name against
// Pebble, with and without nonce rejection.
func BenchmarkObtain(b *testing.B) {
	for _, reject := range []int{0, 20} {
		b.Run("noncereject="+strconv.Itoa(reject), func(b *testing.B) {
			e := newEnv(b, testenv.PebbleOptions{NonceRejectPercent: reject})
			iss := e.issuer(newMemAccounts())
			// Register the account outside the measurement.
			if _, err := iss.session(b.Context()); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := iss.Obtain(b.Context(), Request{Names: []string{"bench.example.test", "*.bench.example.test"}, KeyType: "EC"}, e.solver(), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
