package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/riverqueue/river"
)

// Queue is the job queue deliveries run in, apart from issuances.
const Queue = "notify"

// Delivery defaults.
const (
	DefaultMaxAttempts = 12
	DefaultRetryBase   = 10 * time.Second
	maxRetryDelay      = time.Hour
	requestTimeout     = 15 * time.Second
)

// DeliveryArgs is the job that delivers one event to one endpoint. It names
// the endpoint by ID, never by URL.
type DeliveryArgs struct {
	Endpoint string `json:"endpoint"`
	Event    Event  `json:"event"`
}

// Kind implements river.JobArgs.
func (DeliveryArgs) Kind() string { return "certkeeper_webhook" }

// Observer is told of every delivery attempt: result is "success",
// "retry" (failed, tried again later) or "dropped" (failed for the last
// time, or the endpoint is no longer configured).
type Observer interface {
	ObserveWebhook(event, payloadType, result string, duration time.Duration)
}

// Options configure a Notifier.
type Options struct {
	Endpoints []Endpoint
	// Client posts the payloads; nil means a client with a 15-second
	// timeout.
	Client *http.Client
	// MaxAttempts is how often a delivery is tried; zero means 12.
	MaxAttempts int
	// RetryBase is the wait before the first retry, doubled for each next
	// one up to an hour; zero means 10 seconds.
	RetryBase time.Duration
	Observer  Observer
	Logger    *slog.Logger
}

// Notifier turns events into delivery jobs and delivers them. It is safe
// for concurrent use.
type Notifier struct {
	opts      Options
	endpoints map[string]Endpoint
	logger    *slog.Logger
}

// New returns a Notifier for the endpoints.
func New(opts Options) *Notifier {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: requestTimeout}
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = DefaultRetryBase
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{opts: opts, endpoints: map[string]Endpoint{}, logger: logger.With("component", "notify")}
	for _, e := range opts.Endpoints {
		n.endpoints[e.ID()] = e
	}
	return n
}

// Jobs returns the delivery jobs for ev, one per endpoint that wants it;
// none when no endpoint does. The caller inserts them, in the transaction
// that records what happened when there is one.
func (n *Notifier) Jobs(ev Event) []river.InsertManyParams {
	var out []river.InsertManyParams
	for _, e := range n.opts.Endpoints {
		if !e.Wants(ev.Kind) {
			continue
		}
		out = append(out, river.InsertManyParams{
			Args:       DeliveryArgs{Endpoint: e.ID(), Event: ev},
			InsertOpts: &river.InsertOpts{Queue: Queue, MaxAttempts: n.opts.MaxAttempts},
		})
	}
	return out
}

// Register adds the delivery worker to workers.
func (n *Notifier) Register(workers *river.Workers) {
	river.AddWorker(workers, &worker{n: n})
}

var _ river.Worker[DeliveryArgs] = (*worker)(nil)

// worker delivers one DeliveryArgs job.
type worker struct {
	river.WorkerDefaults[DeliveryArgs]
	n *Notifier
}

// NextRetry waits RetryBase after the first failure, doubling up to an hour.
func (w *worker) NextRetry(j *river.Job[DeliveryArgs]) time.Time {
	d := w.n.opts.RetryBase
	for i := 1; i < j.Attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	return time.Now().Add(min(d, maxRetryDelay))
}

// Timeout bounds one attempt.
func (w *worker) Timeout(*river.Job[DeliveryArgs]) time.Duration { return 2 * requestTimeout }

func (w *worker) Work(ctx context.Context, j *river.Job[DeliveryArgs]) error {
	n, ev := w.n, j.Args.Event
	logger := n.logger.With("event", ev.Kind, "certificate", ev.CertificateName, "endpoint", j.Args.Endpoint,
		"attempt", j.Attempt)
	e, ok := n.endpoints[j.Args.Endpoint]
	if !ok {
		logger.WarnContext(ctx, "webhook endpoint no longer configured; dropping the event")
		n.observe(ev.Kind, "unknown", "dropped", 0)
		return nil
	}
	typ := e.Type()
	start := time.Now()
	err := n.deliver(ctx, e, typ, ev)
	if err == nil {
		n.observe(ev.Kind, typ, "success", time.Since(start))
		logger.DebugContext(ctx, "webhook delivered")
		return nil
	}
	if j.Attempt >= j.MaxAttempts {
		n.observe(ev.Kind, typ, "dropped", time.Since(start))
		logger.ErrorContext(ctx, "webhook delivery failed for the last time; dropping the event", "error", err)
		return river.JobCancel(err)
	}
	n.observe(ev.Kind, typ, "retry", time.Since(start))
	logger.WarnContext(ctx, "webhook delivery failed; will retry", "error", err)
	return err
}

func (n *Notifier) observe(event, payloadType, result string, d time.Duration) {
	if n.opts.Observer != nil {
		n.opts.Observer.ObserveWebhook(event, payloadType, result, d)
	}
}

// deliver posts one payload. Its errors never hold the URL, which may carry
// a token.
func (n *Notifier) deliver(ctx context.Context, e Endpoint, typ string, ev Event) error {
	body, err := Payload(typ, ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return errors.New("building the webhook request: invalid URL")
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "certkeeper")
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL
		}
		return fmt.Errorf("posting to the webhook at %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("posting to the webhook at %s: status %s: %s", req.URL.Host,
			strconv.Itoa(resp.StatusCode), bytes.TrimSpace(text))
	}
	return nil
}
