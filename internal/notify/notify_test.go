package notify

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
)

var expires = time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC)

func completed() Event {
	return Event{Kind: config.EventCompleted, CertificateName: "www-example-com", DNSNames: []string{"www.example.com", "example.com"},
		ExpirationDate: expires, ACMEEndpoint: "acme-v02.api.letsencrypt.org", OperationID: "0123456789abcdef0123456789abcdef"}
}

func failed() Event {
	return Event{Kind: config.EventFailed, CertificateName: "www-example-com", DNSNames: []string{"www.example.com"},
		OperationID: "0123456789abcdef0123456789abcdef", Reason: "validating: CA answered urn:ietf:params:acme:error:dns"}
}

func TestDetectPayloadType(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"https://hooks.slack.com/services/T0/B0/x":                                    config.PayloadSlack,
		"https://HOOKS.SLACK.COM/services/x":                                          config.PayloadSlack,
		"https://prod-01.westus.logic.azure.com:443/workflows/x":                      config.PayloadTeams,
		"https://abc.12.environment.api.powerplatform.com/powerautomate/x":            config.PayloadTeams,
		"https://logic.azure.com/x":                                                   config.PayloadGeneric, // not a subdomain
		"https://example.webhook.office.com/webhookb2/x":                              config.PayloadGeneric,
		"https://hooks.slack.com.evil.example/x":                                      config.PayloadGeneric,
		"https://receiver.example.com/hook?next=https://hooks.slack.com/services/x/y": config.PayloadGeneric,
		"::not a url": config.PayloadGeneric,
	}
	for u, want := range tests {
		if got := DetectPayloadType(u); got != want {
			t.Errorf("DetectPayloadType(%q) = %s, want %s", u, got, want)
		}
	}
	e := Endpoint{URL: "https://hooks.slack.com/services/x", PayloadType: config.PayloadGeneric}
	if got := e.Type(); got != config.PayloadGeneric {
		t.Errorf("an explicit payload type is kept: got %s", got)
	}
}

func TestPayload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  string
		ev   Event
		want string
	}{
		{
			name: "generic completed: Acmebot's fields",
			typ:  config.PayloadGeneric, ev: completed(),
			want: `{"event":"completed","certificateName":"www-example-com","expirationDate":"2026-06-01T12:30:00+00:00",
				"dnsNames":["www.example.com","example.com"],"acmeEndpoint":"acme-v02.api.letsencrypt.org",
				"keyVaultName":"certkeeper","functionAppName":"certkeeper","operationId":"0123456789abcdef0123456789abcdef"}`,
		},
		{
			name: "generic failed",
			typ:  config.PayloadGeneric, ev: failed(),
			want: `{"event":"failed","certificateName":"www-example-com","dnsNames":["www.example.com"],
				"keyVaultName":"certkeeper","functionAppName":"certkeeper","operationId":"0123456789abcdef0123456789abcdef",
				"reason":"validating: CA answered urn:ietf:params:acme:error:dns"}`,
		},
		{
			name: "slack completed",
			typ:  config.PayloadSlack, ev: completed(),
			want: `{"username":"Acmebot","attachments":[{"text":"A new certificate has been issued.","color":"good","fields":[
				{"title":"Certificate Name","value":"www-example-com","short":true},
				{"title":"Expiration Date","value":"2026-06-01T12:30:00+00:00","short":true},
				{"title":"ACME Endpoint","value":"acme-v02.api.letsencrypt.org","short":true},
				{"title":"DNS Names","value":"www.example.com\nexample.com"}]}]}`,
		},
		{
			name: "slack failed",
			typ:  config.PayloadSlack, ev: failed(),
			want: `{"username":"Acmebot","attachments":[{"text":"Failed to issue a new certificate.","color":"danger","fields":[
				{"title":"Certificate Name","value":"www-example-com","short":true},
				{"title":"DNS Names","value":"www.example.com"},
				{"title":"Reason","value":"validating: CA answered urn:ietf:params:acme:error:dns"}]}]}`,
		},
		{
			name: "teams expiring",
			typ:  config.PayloadTeams,
			ev: Event{Kind: config.EventExpiring, CertificateName: "api", DNSNames: []string{"api.example.com"},
				ExpirationDate: expires, ACMEEndpoint: "ca.example"},
			want: `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{
				"type":"AdaptiveCard","body":[{"type":"TextBlock","text":"A certificate expires soon and has not been renewed.","wrap":true},
				{"type":"FactSet","facts":[{"title":"Certificate Name","value":"api"},
				{"title":"Expiration Date","value":"2026-06-01T12:30:00+00:00"},{"title":"ACME Endpoint","value":"ca.example"},
				{"title":"DNS Names","value":"api.example.com"}]}]}}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Payload(tt.typ, tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &wantV); err != nil {
				t.Fatalf("bad want: %v", err)
			}
			if diff := cmp.Diff(wantV, gotV); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
		})
	}
}

// receiver is an httptest webhook endpoint that answers with the statuses
// given, in turn (then 200), and records the bodies.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	bodies   []string
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("got %s with Content-Type %q", req.Method, req.Header.Get("Content-Type"))
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.bodies = append(r.bodies, string(body))
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte("ack"))
	}))
	t.Cleanup(r.Close)
	return r
}

type observation struct{ event, typ, result string }

type recorder struct {
	mu  sync.Mutex
	got []observation
}

func (r *recorder) ObserveWebhook(event, payloadType, result string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, observation{event, payloadType, result})
}

// work runs the delivery worker on the job for endpoint e at attempt.
func work(t *testing.T, n *Notifier, e Endpoint, ev Event, attempt, maxAttempts int) error {
	t.Helper()
	w := &worker{n: n}
	j := &river.Job[DeliveryArgs]{JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: maxAttempts},
		Args: DeliveryArgs{Endpoint: e.ID(), Event: ev}}
	return w.Work(t.Context(), j)
}

// TestDeliveryPerPayloadType delivers to one receiver per payload type,
// the first attempt refused with a 500 and retried.
func TestDeliveryPerPayloadType(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{config.PayloadGeneric, config.PayloadSlack, config.PayloadTeams} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, http.StatusInternalServerError)
			e := Endpoint{URL: secret.String(rcv.URL + "/token-abc"), PayloadType: typ}
			rec := &recorder{}
			n := New(Options{Endpoints: []Endpoint{e}, Observer: rec})
			jobs := n.Jobs(completed())
			if len(jobs) != 1 || jobs[0].InsertOpts.Queue != Queue || jobs[0].InsertOpts.MaxAttempts != DefaultMaxAttempts {
				t.Fatalf("Jobs = %+v; want one delivery job in the notify queue", jobs)
			}
			args := jobs[0].Args.(DeliveryArgs)
			raw, _ := json.Marshal(args)
			if strings.Contains(string(raw), "token-abc") {
				t.Errorf("the job %s holds the URL", raw)
			}

			err := work(t, n, e, args.Event, 1, DefaultMaxAttempts)
			if err == nil || !strings.Contains(err.Error(), "status 500") || strings.Contains(err.Error(), "token-abc") {
				t.Errorf("first attempt = %v; want the 500, without the URL", err)
			}
			if err := work(t, n, e, args.Event, 2, DefaultMaxAttempts); err != nil {
				t.Fatalf("retry: %v", err)
			}
			want, _ := Payload(typ, completed())
			rcv.mu.Lock()
			bodies := rcv.bodies
			rcv.mu.Unlock()
			if len(bodies) != 2 || bodies[1] != string(want) {
				t.Errorf("receiver got %q; want two posts of %s", bodies, want)
			}
			if diff := cmp.Diff([]observation{{"completed", typ, "retry"}, {"completed", typ, "success"}}, rec.got,
				cmp.AllowUnexported(observation{})); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeliveryGivesUp(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, http.StatusBadGateway)
	e := Endpoint{URL: secret.String(rcv.URL)}
	rec := &recorder{}
	n := New(Options{Endpoints: []Endpoint{e}, Observer: rec})
	err := work(t, n, e, failed(), 3, 3)
	var cancel *rivertype.JobCancelError
	if !errors.As(err, &cancel) {
		t.Errorf("last attempt = %v; want the job cancelled", err)
	}
	// An endpoint removed from the configuration drops its jobs.
	gone := Endpoint{URL: "https://gone.example/hook"}
	if err := work(t, n, gone, failed(), 1, 3); err != nil {
		t.Errorf("job for a removed endpoint = %v, want nil", err)
	}
	want := []observation{{"failed", "generic", "dropped"}, {"failed", "unknown", "dropped"}}
	if diff := cmp.Diff(want, rec.got, cmp.AllowUnexported(observation{})); diff != "" {
		t.Errorf("observations (-want +got):\n%s", diff)
	}
}

func TestJobsFilterEvents(t *testing.T) {
	t.Parallel()
	all := Endpoint{URL: "https://a.example/"}
	onlyFailed := Endpoint{URL: "https://b.example/", Events: []string{config.EventFailed}}
	n := New(Options{Endpoints: []Endpoint{all, onlyFailed}})
	if got := len(n.Jobs(completed())); got != 1 {
		t.Errorf("completed goes to %d endpoints, want 1", got)
	}
	if got := len(n.Jobs(failed())); got != 2 {
		t.Errorf("failed goes to %d endpoints, want 2", got)
	}
	if New(Options{}).Jobs(completed()) != nil {
		t.Error("no endpoint should give no job")
	}
}

func TestNextRetry(t *testing.T) {
	t.Parallel()
	w := &worker{n: New(Options{RetryBase: time.Second})}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 20: time.Hour} {
		j := &river.Job[DeliveryArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}}
		got := time.Until(w.NextRetry(j))
		if got > want || got < want-time.Second {
			t.Errorf("NextRetry(attempt %d) in %v, want %v", attempt, got, want)
		}
	}
}
