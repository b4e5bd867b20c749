package dns_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rfc2136"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

func bindProvider(t *testing.T, b *testenv.BIND) dns.Provider {
	t.Helper()
	p, err := rfc2136.New(rfc2136.Config{
		Nameserver:    b.Addr,
		TSIGKeyName:   b.TSIGKeyName,
		TSIGAlgorithm: b.TSIGAlgorithm,
		TSIGSecret:    secret.String(b.TSIGSecret),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func bindRegistry(t *testing.T, b *testenv.BIND, zones []string, opts dns.Options) *dns.Registry {
	t.Helper()
	r, err := dns.NewRegistry([]dns.Named{{Name: "bind", Provider: bindProvider(t, b), Zones: zones}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantTXT(t *testing.T, b *testenv.BIND, fqdn string, want []string) {
	t.Helper()
	got, err := b.TXT(t.Context(), fqdn)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TXT %s (-want +got):\n%s", fqdn, diff)
	}
}

func wantNoChallengeRecords(t *testing.T, b *testenv.BIND, zones ...string) {
	t.Helper()
	for _, zone := range zones {
		names, err := b.ChallengeRecords(t.Context(), zone)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 0 {
			t.Errorf("challenge records left in %s: %v", zone, names)
		}
	}
}

func TestSolverBIND(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{})
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := bindRegistry(t, b, []string{"example.test"}, dns.Options{Resolvers: []string{b.Addr}, Logger: logger})
	ctx := t.Context()
	challenges := []issuer.Challenge{
		{Domain: "example.test", Value: "apex-value"},
		{Domain: "example.test", Wildcard: true, Value: "wildcard-value"},
		{Domain: "www.example.test", Value: "www-value"},
	}
	s := r.Solver("", "")
	start := time.Now()
	if err := s.Present(ctx, challenges); err != nil {
		t.Fatalf("Present: %v", err)
	}
	presented := time.Now()
	if err := s.Wait(ctx, challenges); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	t.Logf("Present took %s, Wait returned %s after it", presented.Sub(start), time.Since(presented))
	wantTXT(t, b, "_acme-challenge.example.test.", []string{"apex-value", "wildcard-value"})
	wantTXT(t, b, "_acme-challenge.www.example.test.", []string{"www-value"})

	if err := s.CleanUp(ctx, challenges); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	wantNoChallengeRecords(t, b, "example.test")
	if err := s.CleanUp(ctx, challenges); err != nil {
		t.Fatalf("CleanUp again: %v", err)
	}
}

// TestSolverCleanUpFreshProcess removes records that another registry (a
// process that crashed) presented, given only the challenges.
func TestSolverCleanUpFreshProcess(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{})
	challenges := []issuer.Challenge{
		{Domain: "a.example.test", Value: "one"},
		{Domain: "a.example.test", Wildcard: true, Value: "two"},
	}
	crashed := bindRegistry(t, b, []string{"example.test"}, dns.Options{})
	if err := crashed.Solver("bind", "").Present(t.Context(), challenges); err != nil {
		t.Fatal(err)
	}
	wantTXT(t, b, "_acme-challenge.a.example.test.", []string{"one", "two"})

	fresh := bindRegistry(t, b, []string{"example.test"}, dns.Options{})
	if err := fresh.Solver("bind", "").CleanUp(t.Context(), challenges); err != nil {
		t.Fatal(err)
	}
	wantNoChallengeRecords(t, b, "example.test")
}

func TestSolverAliasBIND(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{
		Zones: []string{"example.test", "alias.test"},
		ExtraRecords: []string{
			"_acme-challenge.example.test. IN CNAME _acme-challenge.acme.alias.test.",
			"_acme-challenge.www.example.test. IN CNAME _acme-challenge.acme.alias.test.",
		},
	})
	// Only the alias zone is configured: the names' own zone is not written.
	r := bindRegistry(t, b, []string{"alias.test"}, dns.Options{Resolvers: []string{b.Addr}})
	ctx := t.Context()
	challenges := []issuer.Challenge{
		{Domain: "example.test", Value: "apex"},
		{Domain: "example.test", Wildcard: true, Value: "wild"},
		{Domain: "www.example.test", Value: "www"},
	}
	if err := r.Check(ctx, []string{"acme.alias.test"}, "bind"); err != nil {
		t.Fatalf("Check: %v", err)
	}
	s := r.Solver("bind", "Acme.Alias.Test.")
	if err := s.Present(ctx, challenges); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if err := s.Wait(ctx, challenges); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	wantTXT(t, b, "_acme-challenge.acme.alias.test.", []string{"apex", "wild", "www"})
	names, err := b.ChallengeRecords(ctx, "alias.test")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"_acme-challenge.acme.alias.test."}, names); diff != "" {
		t.Errorf("alias zone challenge records (-want +got):\n%s", diff)
	}
	wantNoChallengeRecords(t, b, "example.test")

	if err := s.CleanUp(ctx, challenges); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	wantNoChallengeRecords(t, b, "example.test", "alias.test")
}

func TestSolverWaitTimeout(t *testing.T) {
	t.Parallel()
	primary := testenv.StartBIND(t, testenv.BINDOptions{})
	// A second server for the same zone that never receives the records.
	stale := testenv.StartBIND(t, testenv.BINDOptions{})
	r, err := dns.NewRegistry([]dns.Named{{
		Name: "bind", Provider: bindProvider(t, primary), Zones: []string{"example.test"},
		PropagationTimeout: time.Second,
	}}, dns.Options{Resolvers: []string{primary.Addr, stale.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	challenges := []issuer.Challenge{{Domain: "example.test", Value: "v1"}, {Domain: "example.test", Wildcard: true, Value: "v2"}}
	s := r.Solver("", "")
	if err := s.Present(ctx, challenges); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.CleanUp(context.Background(), challenges) })

	err = s.Wait(ctx, challenges)
	if !errors.Is(err, dns.ErrNotPropagated) {
		t.Fatalf("Wait = %v, want ErrNotPropagated", err)
	}
	t.Logf("error: %v", err)
	msg := err.Error()
	for _, part := range []string{"_acme-challenge.example.test.", stale.Addr + " answered NXDOMAIN"} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q does not contain %q", msg, part)
		}
	}
	if strings.Contains(msg, primary.Addr) {
		t.Errorf("error %q names the server that has the records", msg)
	}

	// A server with part of the RRset is reported with what it has.
	if err := bindProvider(t, stale).Present(ctx, "example.test", "_acme-challenge.example.test.", []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	err = s.Wait(ctx, challenges)
	want := stale.Addr + ` answered ["v1"], missing ["v2"]`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Wait = %v, want an error containing %q", err, want)
	}
}

func TestSolverWaitCancelled(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{})
	r := bindRegistry(t, b, []string{"example.test"}, dns.Options{Resolvers: []string{b.Addr}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := r.Solver("", "").Wait(ctx, []issuer.Challenge{{Domain: "example.test", Value: "never"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestSolverAuthoritative finds the zone's name servers through a resolver
// (BIND standing in for /etc/resolv.conf) and asks them without recursion.
func TestSolverAuthoritative(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{})
	r := bindRegistry(t, b, []string{"example.test"}, dns.Options{})
	_, port, err := net.SplitHostPort(b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	// ns.example.test. has the address 127.0.0.1; BIND listens on port.
	dns.SetAuthoritativeLookup(r, []string{b.Addr}, port)
	ctx := t.Context()
	challenges := []issuer.Challenge{{Domain: "auth.example.test", Value: "v"}}
	s := r.Solver("", "")
	if err := s.Present(ctx, challenges); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx, challenges); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := s.CleanUp(ctx, challenges); err != nil {
		t.Fatal(err)
	}

	// A zone the resolver knows nothing of fails with the lookup named.
	r2, err := dns.NewRegistry([]dns.Named{{Name: "bind", Provider: bindProvider(t, b), Zones: []string{"missing.test"}}}, dns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dns.SetAuthoritativeLookup(r2, []string{b.Addr}, port)
	err = r2.Solver("", "").Wait(ctx, []issuer.Challenge{{Domain: "missing.test", Value: "v"}})
	if err == nil || !strings.Contains(err.Error(), "looking up the name servers of zone missing.test") {
		t.Errorf("Wait = %v, want a name server lookup error", err)
	}
}
