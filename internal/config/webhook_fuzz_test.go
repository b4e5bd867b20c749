package config

import (
	"net/url"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// FuzzWebhookURL feeds arbitrary webhook URLs to the configuration's
// validation: it must not panic, a URL it accepts must be an absolute http
// or https URL, and no problem it reports may quote the URL (it may hold a
// token). The seed corpus is in testdata/fuzz/FuzzWebhookURL.
func FuzzWebhookURL(f *testing.F) {
	for _, s := range []string{"https://hooks.slack.com/services/T/B/SECRET", "http://127.0.0.1:8080/x", "ftp://x/y",
		"//host/path", "https://", "http://[::1", "https://user:SECRET@host/", "javascript:alert(1)", " https://x", "https://x\n/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var p problems
		Webhooks{{URL: secret.String(raw)}}.validate(&p)
		if len(p) == 0 {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("accepted %q, which is not an absolute http(s) URL", raw)
			}
			return
		}
		for _, e := range p {
			if len(raw) >= 8 && strings.Contains(e.Error(), raw) {
				t.Fatalf("problem %q quotes the URL", e)
			}
		}
	})
}
