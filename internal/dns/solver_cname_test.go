package dns_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// nsProvider is a BIND provider that reports name servers for the
// delegation check.
type nsProvider struct {
	dns.Provider
	ns []string
}

func (p nsProvider) NameServers(context.Context, string) ([]string, error) { return p.ns, nil }

// TestSolverFollowsCNAME writes the record at the end of a CNAME chain, in
// the configured zone that holds it, when the name's own zone is not
// configured at all.
func TestSolverFollowsCNAME(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{
		Zones: []string{"example.test", "alias.test", "elsewhere.test"},
		ExtraRecords: []string{
			"_acme-challenge.www.example.test. IN CNAME _acme-challenge.hop.example.test.",
			"_acme-challenge.hop.example.test. IN CNAME _acme-challenge.www.alias.test.",
			"_acme-challenge.api.example.test. IN CNAME _acme-challenge.api.alias.test.",
			"_acme-challenge.out.example.test. IN CNAME _acme-challenge.out.elsewhere.test.",
			"_acme-challenge.loop.example.test. IN CNAME _acme-challenge.loop2.example.test.",
			"_acme-challenge.loop2.example.test. IN CNAME _acme-challenge.loop.example.test.",
		},
	})
	r := bindRegistry(t, b, []string{"alias.test"}, dns.Options{Resolvers: []string{b.Addr}, FollowCNAMEs: true})
	ctx := t.Context()

	targets, err := r.Targets(ctx, []string{"www.example.test", "*.www.example.test", "api.example.test"}, "", "")
	if err != nil {
		t.Fatalf("Targets: %v", err)
	}
	want := []dns.Target{
		{Name: "www.example.test", Record: "_acme-challenge.www.alias.test.", Provider: "bind", Zone: "alias.test",
			Chain: []string{"_acme-challenge.www.example.test.", "_acme-challenge.hop.example.test.", "_acme-challenge.www.alias.test."}},
		{Name: "*.www.example.test", Record: "_acme-challenge.www.alias.test.", Provider: "bind", Zone: "alias.test",
			Chain: []string{"_acme-challenge.www.example.test.", "_acme-challenge.hop.example.test.", "_acme-challenge.www.alias.test."}},
		{Name: "api.example.test", Record: "_acme-challenge.api.alias.test.", Provider: "bind", Zone: "alias.test",
			Chain: []string{"_acme-challenge.api.example.test.", "_acme-challenge.api.alias.test."}},
	}
	if diff := cmp.Diff(want, targets); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}

	challenges := []issuer.Challenge{
		{Domain: "www.example.test", Value: "www"},
		{Domain: "www.example.test", Wildcard: true, Value: "wild"},
		{Domain: "api.example.test", Value: "api"},
	}
	s := r.Solver("", "")
	if err := s.(issuer.Preflighter).Preflight(ctx, []string{"www.example.test", "*.www.example.test", "api.example.test"}); err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	if err := s.Present(ctx, challenges); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if err := s.Wait(ctx, challenges); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	wantTXT(t, b, "_acme-challenge.www.alias.test.", []string{"wild", "www"})
	wantTXT(t, b, "_acme-challenge.api.alias.test.", []string{"api"})
	// A fresh solver (another process) finds the same records to remove.
	if err := r.Solver("", "").CleanUp(ctx, challenges); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	wantNoChallengeRecords(t, b, "example.test", "alias.test")

	tests := []struct {
		name string
		want []string
	}{
		{"nocname.example.test", []string{"no configured DNS zone contains nocname.example.test"}},
		{"out.example.test", []string{"_acme-challenge.out.example.test. is delegated by CNAME (_acme-challenge.out.example.test. → _acme-challenge.out.elsewhere.test.), but no configured DNS zone contains _acme-challenge.out.elsewhere.test."}},
		{"loop.example.test", []string{"CNAME loop: _acme-challenge.loop.example.test. → _acme-challenge.loop2.example.test. → _acme-challenge.loop.example.test."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Check(ctx, []string{tt.name}, "")
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Check = %v, want an error containing %q", err, w)
				}
			}
		})
	}
}

// TestPreflightAlias checks, with dnsAlias, that every name's challenge
// record is a CNAME to the alias's and names each one that is not.
func TestPreflightAlias(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{
		Zones: []string{"example.test", "alias.test"},
		ExtraRecords: []string{
			"_acme-challenge.good.example.test. IN CNAME _acme-challenge.acme.alias.test.",
			"_acme-challenge.chain.example.test. IN CNAME _acme-challenge.good.example.test.",
			"_acme-challenge.wrong.example.test. IN CNAME _acme-challenge.other.alias.test.",
		},
	})
	r := bindRegistry(t, b, []string{"alias.test"}, dns.Options{Resolvers: []string{b.Addr}, FollowCNAMEs: true})
	ctx := t.Context()
	if err := r.Preflight(ctx, []string{"good.example.test", "*.good.example.test", "chain.example.test"}, "", "acme.alias.test"); err != nil {
		t.Fatalf("Preflight with every CNAME in place: %v", err)
	}
	err := r.Preflight(ctx, []string{"good.example.test", "missing.example.test", "wrong.example.test"}, "bind", "acme.alias.test")
	for _, want := range []string{
		"the CNAME record _acme-challenge.missing.example.test. → _acme-challenge.acme.alias.test. (dnsAlias) is missing: _acme-challenge.missing.example.test. is not a CNAME",
		"the CNAME record _acme-challenge.wrong.example.test. → _acme-challenge.acme.alias.test. (dnsAlias) is missing: _acme-challenge.wrong.example.test. leads to _acme-challenge.other.alias.test. instead",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Preflight = %v, want an error containing %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "good.example.test") {
		t.Errorf("Preflight error %q names a good record", err)
	}
	// An alias in no configured zone is refused before any lookup.
	err = r.Preflight(ctx, []string{"good.example.test"}, "", "acme.nowhere.test")
	if err == nil || !strings.Contains(err.Error(), "no configured DNS zone contains _acme-challenge.acme.nowhere.test., the record of dnsAlias acme.nowhere.test") {
		t.Errorf("Preflight with an alias outside the zones = %v", err)
	}
}

// TestPreflightDelegation compares the zone's NS records with the name
// servers the provider reports.
func TestPreflightDelegation(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{})
	tests := []struct {
		name    string
		ns      []string
		wantErr string
	}{
		{"matches", []string{"NS.Example.Test.", "ns.elsewhere.test"}, ""},
		{"unknown", nil, ""},
		{"mismatch", []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"},
			`zone example.test is not delegated to DNS provider "bind": expected name servers ada.ns.cloudflare.com, bob.ns.cloudflare.com, actual ns.example.test`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := dns.NewRegistry([]dns.Named{{Name: "bind", Provider: nsProvider{bindProvider(t, b), tt.ns}, Zones: []string{"example.test"}}},
				dns.Options{Resolvers: []string{b.Addr}, FollowCNAMEs: true})
			if err != nil {
				t.Fatal(err)
			}
			err = r.Preflight(t.Context(), []string{"www.example.test"}, "", "")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Preflight = %v", err)
				}
				return
			}
			var de *dns.DelegationError
			if !errors.As(err, &de) || err.Error() != tt.wantErr {
				t.Fatalf("Preflight = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
