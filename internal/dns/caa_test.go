package dns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

func TestCheckCAA(t *testing.T) {
	t.Parallel()
	// BIND serves the TLD too, so that walking up ends in an answer rather
	// than a refusal.
	b := testenv.StartBIND(t, testenv.BINDOptions{
		Zones: []string{"example.test", "other.test", "test"},
		ExtraRecords: []string{
			`allow.example.test. CAA 0 issue "Pebble.LetsEncrypt.org"`,
			`forbid.example.test. CAA 0 issue "letsencrypt.org"`,
			`forbid.example.test. CAA 0 iodef "mailto:security@example.test"`,
			`nobody.example.test. CAA 0 issue ";"`,
			`wild.example.test. CAA 0 issue "pebble.letsencrypt.org"`,
			`wild.example.test. CAA 0 issuewild ";"`,
			`acct.example.test. CAA 0 issue "pebble.letsencrypt.org; accounturi=https://ca.test/acct/1"`,
			`methods.example.test. CAA 0 issue "pebble.letsencrypt.org; validationmethods=http-01,tls-alpn-01"`,
			`dns01.example.test. CAA 0 issue "pebble.letsencrypt.org; validationmethods=http-01,dns-01"`,
			`crit.example.test. CAA 128 tbs "unknown"`,
			`iodef.example.test. CAA 0 iodef "mailto:security@example.test"`,
			`inzone.example.test. CNAME allow.example.test.`,
			`www.outzone.example.test. CNAME target.other.test.`,
			`target.other.test. CAA 0 issue "letsencrypt.org"`,
			`chain.example.test. CNAME inzone.example.test.`,
		},
	})
	r, err := dns.NewRegistry(nil, dns.Options{Resolvers: []string{b.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	pebble := []string{"pebble.letsencrypt.org"}
	tests := []struct {
		name       string
		identities []string
		accountURI string
		wantOK     bool
		wantErr    bool   // the verdict is unknown
		wantOwner  string // where the records were found
		wantReason string // a substring of the reason
	}{
		{name: "plain.example.test", identities: pebble, wantOK: true, wantReason: "no CAA records up to test"},
		{name: "allow.example.test", identities: pebble, wantOK: true, wantOwner: "allow.example.test",
			wantReason: `allow.example.test. CAA 0 issue "Pebble.LetsEncrypt.org" allows it`},
		{name: "deep.below.allow.example.test", identities: pebble, wantOK: true, wantOwner: "allow.example.test"},
		{name: "forbid.example.test", identities: pebble, wantOwner: "forbid.example.test",
			wantReason: `forbid.example.test. CAA 0 issue "letsencrypt.org" does not name this CA (its CAA identities: pebble.letsencrypt.org)`},
		{name: "*.forbid.example.test", identities: pebble, wantOwner: "forbid.example.test", wantReason: `issue "letsencrypt.org"`},
		{name: "nobody.example.test", identities: pebble, wantOwner: "nobody.example.test", wantReason: `issue ";" does not name this CA`},
		{name: "wild.example.test", identities: pebble, wantOK: true, wantOwner: "wild.example.test"},
		{name: "*.wild.example.test", identities: pebble, wantOwner: "wild.example.test", wantReason: `issuewild ";"`},
		{name: "acct.example.test", identities: pebble, accountURI: "https://ca.test/acct/1", wantOK: true},
		{name: "acct.example.test", identities: pebble, accountURI: "https://ca.test/acct/2",
			wantReason: "allows only account https://ca.test/acct/1, not account https://ca.test/acct/2"},
		{name: "methods.example.test", identities: pebble, wantReason: "does not allow validation by dns-01"},
		{name: "dns01.example.test", identities: pebble, wantOK: true},
		{name: "crit.example.test", identities: pebble, wantReason: `crit.example.test. CAA 128 tbs "unknown" sets the critical flag`},
		{name: "iodef.example.test", identities: pebble, wantOK: true, wantReason: "no issue property"},
		{name: "inzone.example.test", identities: pebble, wantOK: true, wantOwner: "inzone.example.test", wantReason: "allows it"},
		{name: "chain.example.test", identities: pebble, wantOK: true, wantOwner: "chain.example.test"},
		{name: "www.outzone.example.test", identities: pebble, wantOwner: "www.outzone.example.test",
			wantReason: `www.outzone.example.test. CAA 0 issue "letsencrypt.org" does not name this CA`},
		{name: "forbid.example.test", identities: []string{"letsencrypt.org"}, wantOK: true},
		{name: "forbid.example.test", identities: nil, wantErr: true},
		{name: "nobody.example.test", identities: nil, wantReason: `issue ";"`},
		{name: "www.elsewhere.invalid", identities: pebble, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := r.CheckCAA(t.Context(), []string{tt.name}, tt.identities, tt.accountURI)
			if len(got) != 1 {
				t.Fatalf("CheckCAA returned %d verdicts", len(got))
			}
			c := got[0]
			if c.Name != tt.name || c.Allowed != tt.wantOK || (c.Err != nil) != tt.wantErr {
				t.Errorf("CheckCAA(%s) = %+v; want allowed %v, unknown %v", tt.name, c, tt.wantOK, tt.wantErr)
			}
			if c.Forbidden() == (tt.wantOK || tt.wantErr) {
				t.Errorf("Forbidden() = %v for %+v", c.Forbidden(), c)
			}
			if tt.wantOwner != "" && c.Owner != tt.wantOwner {
				t.Errorf("owner = %q, want %q (records %v)", c.Owner, tt.wantOwner, c.Records)
			}
			if !strings.Contains(c.Reason, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", c.Reason, tt.wantReason)
			}
		})
	}

	t.Run("CAAForbidden quotes the records", func(t *testing.T) {
		t.Parallel()
		checks := r.CheckCAA(t.Context(), []string{"allow.example.test", "forbid.example.test", "www.elsewhere.invalid"}, pebble, "")
		if diff := cmp.Diff([]string{"allow.example.test", "forbid.example.test", "www.elsewhere.invalid"},
			[]string{checks[0].Name, checks[1].Name, checks[2].Name}); diff != "" {
			t.Errorf("order of verdicts (-want +got):\n%s", diff)
		}
		err := dns.CAAForbidden("pebble", checks)
		var ce *dns.CAAError
		if !errors.As(err, &ce) || len(ce.Checks) != 1 {
			t.Fatalf("CAAForbidden = %v, want one forbidding name", err)
		}
		want := `CAA records forbid CA pebble: forbid.example.test: forbid.example.test. CAA 0 issue "letsencrypt.org" does not name this CA (its CAA identities: pebble.letsencrypt.org)`
		if err.Error() != want {
			t.Errorf("error = %q\nwant    %q", err, want)
		}
		if dns.CAAForbidden("pebble", checks[:1]) != nil {
			t.Error("an allowing verdict is reported as forbidding")
		}
	})
}
