package app_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
)

// hookReceiver is a webhook endpoint that records the generic payloads it
// accepted and answers 500 to the first failFirst requests.
type hookReceiver struct {
	*httptest.Server
	mu        sync.Mutex
	failFirst int
	requests  int
	accepted  []map[string]any
}

func newHookReceiver(t *testing.T, failFirst int) *hookReceiver {
	h := &hookReceiver{failFirst: failFirst}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("webhook request %s with Content-Type %q; want a JSON POST", r.Method, r.Header.Get("Content-Type"))
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.requests++
		if h.requests <= h.failFirst {
			http.Error(w, "receiver down", http.StatusInternalServerError)
			return
		}
		h.accepted = append(h.accepted, body)
	}))
	t.Cleanup(h.Close)
	return h
}

// events returns the accepted payloads of one event kind.
func (h *hookReceiver) events(kind string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, b := range h.accepted {
		if b["event"] == kind {
			out = append(out, b)
		}
	}
	return out
}

// waitUntil polls cond until it holds, for at most three minutes (a
// generous bound for work that takes seconds).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runService runs the service with key until stop is called or the test
// ends.
func runService(t *testing.T, cfg config.Config, key *secret.Key) (base string, stop func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	bundle, err := os.ReadFile(cfg.ACME.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(t.Context(), app.Options{Config: &cfg, MasterKey: key, CABundle: bundle, Version: "test", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + a.Addr().String(), stop
}

// scrape returns the value of every sample on /metrics, by its series text
// (name{labels}).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	r := do(t, http.MethodGet, url, "")
	if r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("GET %s = %d: %s", url, r.StatusCode, b)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func renewalItem(t *testing.T, base, name string) map[string]any {
	t.Helper()
	var items []map[string]any
	getJSON(t, base+"/api/renewals", &items)
	for _, it := range items {
		if it["certificateName"] == name {
			return it
		}
	}
	t.Fatalf("%s not in /api/renewals: %v", name, items)
	return nil
}

// TestRenewsWhenARIWindowOpens issues a certificate, moves its ARI window
// into the past at Pebble, and watches certkeeper renew it on its own, with
// replaces, without any API call: the webhook receiver (which fails its first
// request, so the delivery is retried) sees the renewal, and /metrics shows
// the new expiry.
func TestRenewsWhenARIWindowOpens(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		hooks := newHookReceiver(t, 1)
		key, _, err := secret.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		cfg := d.config(t, db)
		cfg.Webhook = config.Webhooks{{URL: secret.String(hooks.URL + "/hook"), PayloadType: config.PayloadGeneric}}
		// First the service with a scheduler that does not come round again
		// during the test: the certificate's renewal information is not
		// asked before the window is moved.
		cfg.Renewal.CheckInterval = time.Hour
		zone := "renew-" + db + ".example.test"
		name := "renew-" + db + "-example-test"

		base, stop := runService(t, cfg, key)
		status, body := issueAndWait(t, base, `{"dnsNames":["`+zone+`"],"keyType":"EC"}`)
		if status != http.StatusOK {
			t.Fatalf("issuance ended with %d: %s", status, body)
		}
		first := certificateItem(t, base, name)
		item := renewalItem(t, base, name)
		if item["statusKind"] != "scheduled" || item["nextCheck"] == nil || item["renewAt"] == nil {
			t.Errorf("renewal after issuance = %v; want scheduled with a next check and a planned renewal", item)
		}
		// The issuance's webhook: refused once, then delivered by a retry.
		waitUntil(t, "the completed webhook of the issuance", func() bool { return len(hooks.events("completed")) == 1 })
		got := hooks.events("completed")[0]
		if got["certificateName"] != name || got["expirationDate"] != first["expiresOn"] ||
			got["acmeEndpoint"] != "127.0.0.1" || !sameStrings(got["dnsNames"], []string{zone}) {
			t.Errorf("completed payload = %v; want Acmebot's fields for %s expiring %v", got, name, first["expiresOn"])
		}
		m := scrape(t, base)
		expirySeries := `certkeeper_certificate_expiry_timestamp_seconds{acme_endpoint="127.0.0.1",name="` + name + `",provider="BIND"}`
		if want := unixOf(t, first["expiresOn"]); m[expirySeries] != want {
			t.Errorf("%s = %v, want %v", expirySeries, m[expirySeries], want)
		}
		stop()

		// Move the window into the past at Pebble. The test reads the
		// database beside the service it restarts below.
		st, err := store.OpenShared(t.Context(), dsnOf(cfg), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		v1, err := st.LatestVersion(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-2 * time.Hour)
		if err := d.pebble.SetRenewalInfo(t.Context(), []byte(v1.CertPEM), past, past.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}

		// Then the service again with a scheduler every second.
		cfg.Renewal.CheckInterval = time.Second
		base, _ = runService(t, cfg, key)
		waitUntil(t, "the completed webhook of the renewal", func() bool { return len(hooks.events("completed")) == 2 })

		v2, err := st.LatestVersion(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if v2.ID == v1.ID || v2.Serial == v1.Serial {
			t.Fatalf("no new version: %s then %s", v1.ID, v2.ID)
		}
		if want := ariID(t, v1.CertPEM); v2.Replaces != want || v2.AccountURI == "" || v2.AccountURI != v1.AccountURI {
			t.Errorf("renewed version replaces %q with account %q; want %q by %q", v2.Replaces, v2.AccountURI, want, v1.AccountURI)
		}
		if !strings.Contains(d.pebble.Log(), "is a replacement of") {
			t.Error("Pebble did not log a replacement order")
		}
		second := hooks.events("completed")[1]
		if second["certificateName"] != name || second["expirationDate"] != v2.NotAfter.UTC().Format("2006-01-02T15:04:05+00:00") {
			t.Errorf("renewal payload = %v; want %s expiring %v", second, name, v2.NotAfter)
		}

		m = scrape(t, base)
		if got, want := m[expirySeries], float64(v2.NotAfter.UnixMilli())/1000; got != want {
			t.Errorf("%s = %v after the renewal, want the new expiry %v", expirySeries, got, want)
		}
		for _, series := range []string{
			`certkeeper_operations_total{kind="renew",result="succeeded"}`,
			`certkeeper_renewals_started_total`,
			`certkeeper_acme_requests_total{endpoint="renewalInfo",status="200"}`,
			`certkeeper_acme_requests_total{endpoint="newOrder",status="201"}`,
			`certkeeper_dns_provider_calls_total{operation="present",provider="BIND"}`,
			`certkeeper_certificate_ready{acme_endpoint="127.0.0.1",name="` + name + `",provider="BIND"}`,
			`certkeeper_webhook_deliveries_total{event="completed",payload_type="generic",result="success"}`,
		} {
			if m[series] < 1 {
				t.Errorf("%s = %v, want at least 1", series, m[series])
			}
		}
		renewalSeries := `certkeeper_certificate_renewal_timestamp_seconds{acme_endpoint="127.0.0.1",name="` + name + `",provider="BIND"}`
		if r := m[renewalSeries]; r <= float64(time.Now().Unix()) || r >= float64(v2.NotAfter.Unix()) {
			t.Errorf("%s = %v, want a moment between now and the new expiry", renewalSeries, r)
		}

		// The new version's schedule comes from the CA's window.
		waitUntil(t, "the new version's window from the CA", func() bool {
			it := renewalItem(t, base, name)
			return it["source"] == "ari" && it["lastCheckedAt"] != nil
		})
		item = renewalItem(t, base, name)
		if item["statusKind"] != "scheduled" || item["status"] != "Scheduled" || item["failures"] != 0.0 {
			t.Errorf("renewal after renewing = %v; want scheduled without failures", item)
		}
		assertNoRecords(t, d.bind, zone)
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
			}
		}
	})
}

// TestManualRenewIsNotDoubleRun asks for two renewals at once: the second
// answers with the first one's operation.
func TestManualRenewIsNotDoubleRun(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		base := service(t, d.config(t, db))
		zone := "twice-" + db + ".example.test"
		name := "twice-" + db + "-example-test"
		if status, body := issueAndWait(t, base, `{"dnsNames":["`+zone+`"],"keyType":"EC"}`); status != http.StatusOK {
			t.Fatalf("issuance ended with %d: %s", status, body)
		}
		first := post(t, base+"/api/certificate/"+name+"/renew", "")
		second := post(t, base+"/api/certificate/"+name+"/renew", "")
		if a, b := first.Header.Get("Location"), second.Header.Get("Location"); a != b {
			t.Errorf("two renewals at once got %s and %s; want the second to answer with the first", a, b)
		}
		if status, body := waitFor(t, second); status != http.StatusOK {
			t.Fatalf("renewal ended with %d: %s", status, body)
		}
		third := post(t, base+"/api/certificate/"+name+"/renew", "")
		if third.Header.Get("Location") == first.Header.Get("Location") {
			t.Error("a renewal after the first ended answered with the ended one")
		}
		if status, body := waitFor(t, third); status != http.StatusOK {
			t.Fatalf("third renewal ended with %d: %s", status, body)
		}
		m := scrape(t, base)
		if got := m[`certkeeper_operations_total{kind="renew",result="succeeded"}`]; got != 2 {
			t.Errorf("renew operations succeeded = %v, want 2", got)
		}
	})
}

func dsnOf(cfg config.Config) string {
	if cfg.Database != "" {
		return cfg.Database.Reveal()
	}
	return cfg.SQLitePath()
}

func ariID(t *testing.T, certPEM string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	id, err := issuer.ARICertID(leaf)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func unixOf(t *testing.T, v any) float64 {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return float64(at.Unix())
}

func sameStrings(v any, want []string) bool {
	list, ok := v.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	for i, x := range list {
		if x != want[i] {
			return false
		}
	}
	return true
}

// TestFailuresNotify checks the failure paths end to end: a refused
// issuance sends the failed event (here in Slack's shape), a renewal that
// fails is retried with backoff and shown as failed in /api/renewals, and a
// revocation sends the revoked event.
func TestFailuresNotify(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		hooks := newHookReceiver(t, 0)
		slack := newHookReceiver(t, 0)
		key, _, err := secret.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		cfg := d.config(t, db)
		cfg.Renewal.CheckInterval = time.Hour
		cfg.Webhook = config.Webhooks{
			{URL: secret.String(hooks.URL), PayloadType: config.PayloadGeneric},
			{URL: secret.String(slack.URL), PayloadType: config.PayloadSlack, Events: []string{config.EventFailed}},
		}
		zone := "fail-" + db + ".example.test"
		name := "fail-" + db + "-example-test"
		base, stop := runService(t, cfg, key)
		if status, body := issueAndWait(t, base, `{"dnsNames":["`+zone+`"],"keyType":"EC"}`); status != http.StatusOK {
			t.Fatalf("issuance ended with %d: %s", status, body)
		}
		if status, _ := issueAndWait(t, base, `{"dnsNames":["www.`+db+`.blocked.test"]}`); status != http.StatusInternalServerError {
			t.Fatalf("issuance of a blocked name ended with %d, want 500", status)
		}
		waitUntil(t, "the failed event in Slack's shape", func() bool {
			slack.mu.Lock()
			defer slack.mu.Unlock()
			return len(slack.accepted) == 1
		})
		slack.mu.Lock()
		msg := slack.accepted[0]
		slack.mu.Unlock()
		attachments, _ := msg["attachments"].([]any)
		if msg["username"] != "Acmebot" || len(attachments) != 1 ||
			attachments[0].(map[string]any)["text"] != "Failed to issue a new certificate." ||
			attachments[0].(map[string]any)["color"] != "danger" {
			t.Errorf("Slack payload = %v; want Acmebot's failed attachment", msg)
		}
		if got := len(hooks.events("failed")); got != 1 {
			waitUntil(t, "the generic failed event", func() bool { return len(hooks.events("failed")) == 1 })
		}
		if ev := hooks.events("failed")[0]; !strings.Contains(ev["reason"].(string), "rejectedIdentifier") {
			t.Errorf("failed payload = %v; want the CA's words as the reason", ev)
		}

		// Replacing a certificate revokes the replaced version: that is a
		// revoked event too.
		replaced := "repl-" + db + "-example-test"
		if status, body := issueAndWait(t, base, `{"dnsNames":["repl-`+db+`.example.test"],"keyType":"EC"}`); status != http.StatusOK {
			t.Fatalf("issuance ended with %d: %s", status, body)
		}
		if status, body := waitFor(t, post(t, base+"/api/certificate/"+replaced+"/replace", "")); status != http.StatusOK {
			t.Fatalf("replace ended with %d: %s", status, body)
		}
		waitUntil(t, "the revoked event of the replaced version", func() bool { return len(hooks.events("revoked")) == 1 })
		if ev := hooks.events("revoked")[0]; ev["certificateName"] != replaced || ev["expirationDate"] == nil {
			t.Errorf("revoked payload of the replace = %v", ev)
		}
		stop()

		// The DNS server now refuses certkeeper's updates: the renewal fails.
		cfg.DNS.Providers[0].RFC2136.TSIGSecret = secret.String("d3JvbmctdHNpZy1zZWNyZXQtZm9yLXRlc3Rpbmc=")
		base, _ = runService(t, cfg, key)
		if status, _ := waitFor(t, post(t, base+"/api/certificate/"+name+"/renew", "")); status != http.StatusInternalServerError {
			t.Fatalf("renewal ended with %d, want 500", status)
		}
		item := renewalItem(t, base, name)
		next, _ := time.Parse(time.RFC3339, item["nextCheck"].(string))
		if item["statusKind"] != "failed" || item["failures"] != 1.0 || !strings.Contains(item["message"].(string), "presenting DNS records") ||
			next.Before(time.Now().Add(4*time.Minute)) || next.After(time.Now().Add(6*time.Minute)) {
			t.Errorf("renewal after a failure = %v; want failed once, retried in 5 minutes, naming the step", item)
		}
		waitUntil(t, "the failed event of the renewal", func() bool { return len(hooks.events("failed")) == 2 })

		resp := do(t, http.MethodPost, base+"/api/certificate/"+name+"/revoke", "")
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("revoke = %d: %s", resp.StatusCode, b)
		}
		waitUntil(t, "the revoked event", func() bool { return len(hooks.events("revoked")) == 2 })
		if ev := hooks.events("revoked")[1]; ev["certificateName"] != name || ev["expirationDate"] == nil {
			t.Errorf("revoked payload = %v", ev)
		}

		m := scrape(t, base)
		if got := m[`certkeeper_operations_total{kind="renew",result="failed"}`]; got != 1 {
			t.Errorf("failed renewals = %v, want 1", got)
		}
		if got := m[`certkeeper_dns_provider_errors_total{operation="present",provider="BIND"}`]; got != 1 {
			t.Errorf("DNS present errors = %v, want 1", got)
		}
		if got := m[`certkeeper_certificate_ready{acme_endpoint="127.0.0.1",name="`+name+`",provider="BIND"}`]; got != 0 {
			t.Errorf("a revoked certificate is ready = %v, want 0", got)
		}
	})
}
