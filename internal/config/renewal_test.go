package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadRenewalAndWebhook(t *testing.T) {
	t.Parallel()
	const slack = "https://hooks.slack.com/services/T0/B0/secret-token"
	urlFile := writeFile(t, "hook.url", "https://example.com/hook\n")
	tests := []struct {
		name        string
		doc         string
		wantRenewal Renewal
		wantHooks   Webhooks
	}{
		{
			name:        "defaults",
			doc:         "",
			wantRenewal: Renewal{CheckInterval: 5 * time.Minute, RenewBeforeExpiry: RenewBefore{Days: 30}, ExpiringWithin: 168 * time.Hour, Concurrency: 5},
		},
		{
			name:        "days and one URL",
			doc:         "renewal:\n  checkInterval: 1s\n  renewBeforeExpiry: 20\nwebhook: " + slack + "\n",
			wantRenewal: Renewal{CheckInterval: time.Second, RenewBeforeExpiry: RenewBefore{Days: 20}, ExpiringWithin: 168 * time.Hour, Concurrency: 5},
			wantHooks:   Webhooks{{URL: slack}},
		},
		{
			name: "percentage and a list",
			doc: "renewal:\n  renewBeforeExpiry: \"33%\"\n  expiringWithin: 48h\n  concurrency: 2\nwebhook:\n" +
				"  - url: https://example.com/a\n    events: [completed, failed]\n    payloadType: generic\n" +
				"  - urlFile: " + urlFile + "\n",
			wantRenewal: Renewal{CheckInterval: 5 * time.Minute, RenewBeforeExpiry: RenewBefore{Percent: 33}, ExpiringWithin: 48 * time.Hour, Concurrency: 2},
			wantHooks: Webhooks{
				{URL: "https://example.com/a", Events: []string{"completed", "failed"}, PayloadType: "generic"},
				{URL: "https://example.com/hook", URLFile: urlFile},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := load([]byte(tt.doc), nil)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if diff := cmp.Diff(tt.wantRenewal, c.Renewal); diff != "" {
				t.Errorf("Renewal (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantHooks, c.Webhook); diff != "" {
				t.Errorf("Webhook (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenewalAndWebhookProblems(t *testing.T) {
	t.Parallel()
	const token = "super-secret-token"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"interval too short", "renewal: {checkInterval: 100ms}", []string{"renewal.checkInterval: must be between 1s and 24h"}},
		{"zero days", "renewal: {renewBeforeExpiry: 0}", []string{"renewal.renewBeforeExpiry: must be between 1 and 365 days"}},
		{"percentage too large", "renewal: {renewBeforeExpiry: \"95%\"}", []string{"renewal.renewBeforeExpiry: a percentage must be between 1% and 90%"}},
		{"not a number", "renewal: {renewBeforeExpiry: soon}", []string{`renewBeforeExpiry: "soon" is neither a number of days`}},
		{"concurrency", "renewal: {concurrency: -1}", []string{"renewal.concurrency: must be at least 1"}},
		{"bad URL hides it", "webhook: ftp://x/" + token, []string{"webhook[0].url: must be an absolute http or https URL"}},
		{"bad event and type", "webhook:\n  - url: https://example.com/\n    events: [issued]\n    payloadType: discord\n",
			[]string{`webhook[0].events[0]: "issued" is not an event`, `webhook[0].payloadType: "discord" is not a payload type`}},
		{"unknown key", "webhook:\n  - url: https://example.com/\n    secret: x\n", []string{"field secret not valid in a webhook endpoint"}},
		{"url twice", "webhook:\n  - url: https://example.com/\n    urlFile: " + filepath.Join(t.TempDir(), "none") + "\n",
			[]string{"webhook[0].urlFile: must not be set together with url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load([]byte(tt.doc), nil)
			if err == nil {
				t.Fatal("load succeeded; want problems")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error %q reveals the URL", err)
			}
		})
	}
}

func TestParseRenewBefore(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]RenewBefore{"30": {Days: 30}, " 7 ": {Days: 7}, "33%": {Percent: 33}, "50 %": {Percent: 50}} {
		got, err := ParseRenewBefore(in)
		if err != nil || got != want {
			t.Errorf("ParseRenewBefore(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "%", "1.5"} {
		if _, err := ParseRenewBefore(in); err == nil {
			t.Errorf("ParseRenewBefore(%q) succeeded", in)
		}
	}
}
