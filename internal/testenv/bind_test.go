package testenv

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestStartBIND(t *testing.T) {
	t.Parallel()
	b := StartBIND(t, BINDOptions{
		Zones:        []string{"example.test", "other.test"},
		ExtraRecords: []string{`_acme-challenge.www.other.test. IN TXT "seed"`, `www IN CNAME target.example.test.`},
	})
	ctx := t.Context()

	got, err := b.TXT(ctx, "_acme-challenge.www.other.test.")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"seed"}, got); diff != "" {
		t.Errorf("TXT (-want +got):\n%s", diff)
	}
	names, err := b.ChallengeRecords(ctx, "other.test")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"_acme-challenge.www.other.test."}, names); diff != "" {
		t.Errorf("ChallengeRecords (-want +got):\n%s", diff)
	}
	names, err = b.ChallengeRecords(ctx, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("ChallengeRecords(example.test) = %v, want none", names)
	}

	// The key may update TXT records.
	m := new(dns.Msg)
	m.SetUpdate("example.test.")
	rr, _ := dns.NewRR(`_acme-challenge.example.test. 60 IN TXT "v"`)
	m.Insert([]dns.RR{rr})
	m.SetTsig(b.TSIGKeyName+".", dns.HmacSHA256, 300, 0)
	c := &dns.Client{TsigSecret: map[string]string{b.TSIGKeyName + ".": b.TSIGSecret}}
	r, _, err := c.ExchangeContext(ctx, m, b.Addr)
	if err != nil {
		t.Fatalf("update: %v\n%s", err, b.Log())
	}
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update answered %s\n%s", dns.RcodeToString[r.Rcode], b.Log())
	}
	got, err = b.TXT(ctx, "_acme-challenge.example.test.")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"v"}, got); diff != "" {
		t.Errorf("TXT after update (-want +got):\n%s", diff)
	}
	b.Stop()
	b.Stop()
}
