package dns

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzEvaluateCAA feeds arbitrary CAA property values (what a zone
// publishes) to the evaluation. It must not panic, the issuer domain name
// must come back lowercase without ';' or surrounding spaces, and a value
// naming no issuer (";...") must never allow anyone.
func FuzzEvaluateCAA(f *testing.F) {
	for _, s := range []string{
		`letsencrypt.org`, `;`, `pebble.letsencrypt.org; accounturi=https://ca/acct/1`,
		`Pebble.LetsEncrypt.org. ; validationmethods=dns-01,http-01`, ` ; x=y`, `a;b;c=d=e;;`, ``,
	} {
		f.Add(s, uint8(0), "issue", false)
	}
	f.Fuzz(func(t *testing.T, value string, flag uint8, tag string, wildcard bool) {
		issuer, params := parseCAAValue(value)
		if issuer != strings.ToLower(issuer) || strings.Contains(issuer, ";") || issuer != strings.TrimSpace(issuer) {
			t.Fatalf("parseCAAValue(%q) issuer %q", value, issuer)
		}
		for k := range params {
			if k != strings.ToLower(k) {
				t.Fatalf("parameter key %q is not lowercase", k)
			}
		}
		rr := &mdns.CAA{Hdr: mdns.RR_Header{Name: "example.test.", Rrtype: mdns.TypeCAA, Class: mdns.ClassINET}, Flag: flag, Tag: tag, Value: value}
		allowed, reason, unknown := evaluateCAA("example.test", []*mdns.CAA{rr}, wildcard, []string{issuer}, "")
		if allowed && unknown != nil {
			t.Fatalf("allowed and unknown at once: %v", unknown)
		}
		if !allowed && unknown == nil && reason == "" {
			t.Fatalf("a refusal without a reason for %q", value)
		}
		if issuer == "" && allowed && (strings.EqualFold(tag, "issue") || strings.EqualFold(tag, "issuewild") && wildcard) {
			t.Fatalf("%q with tag %s allows issuance: %s", value, tag, reason)
		}
	})
}
