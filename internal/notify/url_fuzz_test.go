package notify

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// FuzzWebhook feeds arbitrary webhook URLs and event fields to the payload
// type detection and the payload builders: they must not panic, must pick
// one of the payload types, must build valid JSON for every type, and the
// payload must never carry the URL (it may hold a token). The seed corpus
// is in testdata/fuzz/FuzzWebhook.
func FuzzWebhook(f *testing.F) {
	f.Add("https://hooks.slack.com/services/T0/B0/SECRETTOKEN", "www-example-com", "www.example.com", "failed", "ordering: rejected")
	f.Add("https://prod-00.westus.logic.azure.com:443/workflows/x?sig=SECRET", "a", "*.example.com", "completed", "")
	f.Add("http://[::1]:%30/x", "\u202e", "\x00", "expiring", "\"}")
	f.Add("hooks.slack.com", "", "", "revoked", "")
	f.Add("https://user:pass@EVILhooks.slack.com./x", "n", "x", "nope", "reason")
	f.Fuzz(func(t *testing.T, rawURL, name, dnsName, kind, reason string) {
		typ := DetectPayloadType(rawURL)
		if !slices.Contains([]string{config.PayloadGeneric, config.PayloadSlack, config.PayloadTeams}, typ) {
			t.Fatalf("DetectPayloadType(%q) = %q", rawURL, typ)
		}
		if got := (Endpoint{URL: secret.String(rawURL)}).Type(); got != typ {
			t.Fatalf("Endpoint.Type = %q, DetectPayloadType = %q", got, typ)
		}
		ev := Event{Kind: kind, CertificateName: name, DNSNames: []string{dnsName}, Reason: reason,
			ExpirationDate: time.Unix(1700000000, 0), ACMEEndpoint: "ca.example", OperationID: "op"}
		for _, pt := range []string{config.PayloadGeneric, config.PayloadSlack, config.PayloadTeams} {
			body, err := Payload(pt, ev)
			if err != nil {
				continue
			}
			if !json.Valid(body) {
				t.Fatalf("Payload(%s) is not JSON: %q", pt, body)
			}
			if len(rawURL) >= 16 && !strings.Contains(name+dnsName+kind+reason, rawURL) && strings.Contains(string(body), rawURL) {
				t.Fatalf("Payload(%s) carries the webhook URL", pt)
			}
		}
	})
}
