// Package metrics holds certkeeper's Prometheus metrics: per certificate
// (expiry, planned renewal, readiness), operations, requests to the ACME CA,
// DNS provider calls and webhook deliveries. Every label takes values from a
// small fixed set or from the configuration (provider names, certificate
// names), so cardinality stays bounded by what is configured and managed.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/store"
)

const namespace = "certkeeper"

// CertificateSource lists what the per-certificate metrics show.
type CertificateSource interface {
	CertificateGauges(ctx context.Context) ([]store.CertificateGauge, error)
}

// Metrics is the registry and every metric. It is safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	operations      *prometheus.CounterVec
	operationTime   *prometheus.HistogramVec
	acmeRequests    *prometheus.CounterVec
	acmeTime        *prometheus.HistogramVec
	dnsCalls        *prometheus.CounterVec
	dnsErrors       *prometheus.CounterVec
	webhooks        *prometheus.CounterVec
	webhookTime     *prometheus.HistogramVec
	renewalsStarted prometheus.Counter
}

// New returns the metrics, with the per-certificate ones read from source
// at each scrape and the Go runtime and process collectors.
func New(source CertificateSource, logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "operations_total",
			Help: "Issue and renew operations that ended, by kind (issue, renew) and result (succeeded, failed).",
		}, []string{"kind", "result"}),
		operationTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "operation_duration_seconds",
			Help:    "How long an issue or renew operation ran, by kind and result.",
			Buckets: []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200},
		}, []string{"kind", "result"}),
		acmeRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "acme_requests_total",
			Help: "HTTP requests to the ACME CA, by ACME resource (endpoint) and HTTP status code (or error).",
		}, []string{"endpoint", "status"}),
		acmeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "acme_request_duration_seconds",
			Help:    "Latency of HTTP requests to the ACME CA, by ACME resource.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		dnsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dns_provider_calls_total",
			Help: "DNS-01 calls per configured DNS provider: present, wait (propagation) and cleanup.",
		}, []string{"provider", "operation"}),
		dnsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dns_provider_errors_total",
			Help: "DNS-01 calls per configured DNS provider that failed.",
		}, []string{"provider", "operation"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts by event, payload type and result (success, retry, dropped).",
		}, []string{"event", "payload_type", "result"}),
		webhookTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "webhook_delivery_duration_seconds",
			Help:    "Latency of webhook delivery attempts, by payload type.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"payload_type"}),
		renewalsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "renewals_started_total",
			Help: "Automatic renewals the scheduler started.",
		}),
	}
	m.registry.MustRegister(m.operations, m.operationTime, m.acmeRequests, m.acmeTime, m.dnsCalls, m.dnsErrors,
		m.webhooks, m.webhookTime, m.renewalsStarted,
		&certificateCollector{source: source, logger: logger},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Registry is where the metrics are registered.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveOperation counts an operation that ended.
func (m *Metrics) ObserveOperation(kind, result string, d time.Duration) {
	m.operations.WithLabelValues(kind, result).Inc()
	m.operationTime.WithLabelValues(kind, result).Observe(d.Seconds())
}

// ObserveWebhook implements notify.Observer.
func (m *Metrics) ObserveWebhook(event, payloadType, result string, d time.Duration) {
	m.webhooks.WithLabelValues(event, payloadType, result).Inc()
	if result != "dropped" || d > 0 {
		m.webhookTime.WithLabelValues(payloadType).Observe(d.Seconds())
	}
}

// RenewalStarted counts an automatic renewal started.
func (m *Metrics) RenewalStarted() { m.renewalsStarted.Inc() }

// ObserveDNS counts one DNS-01 call of a provider.
func (m *Metrics) ObserveDNS(provider, operation string, err error) {
	m.dnsCalls.WithLabelValues(provider, operation).Inc()
	if err != nil {
		m.dnsErrors.WithLabelValues(provider, operation).Inc()
	}
}

// Transport wraps base (nil: http.DefaultTransport) so that every request to
// the ACME CA is counted and timed by ACME resource (issuer.EndpointOf) and
// status.
func (m *Metrics) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &acmeTransport{base: base, m: m}
}

type acmeTransport struct {
	base http.RoundTripper
	m    *Metrics
}

func (t *acmeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint := issuer.EndpointOf(req)
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.m.acmeRequests.WithLabelValues(endpoint, status).Inc()
	t.m.acmeTime.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	return resp, err
}

// The per-certificate metrics.
var (
	certLabels = []string{"name", "provider", "acme_endpoint"}
	expiryDesc = prometheus.NewDesc(namespace+"_certificate_expiry_timestamp_seconds",
		"When the newest version of the certificate expires (notAfter), as a Unix time.", certLabels, nil)
	notBeforeDesc = prometheus.NewDesc(namespace+"_certificate_not_before_timestamp_seconds",
		"When the newest version of the certificate became valid (notBefore), as a Unix time.", certLabels, nil)
	renewalDesc = prometheus.NewDesc(namespace+"_certificate_renewal_timestamp_seconds",
		"The next planned renewal of the certificate, as a Unix time; absent while not planned.", certLabels, nil)
	readyDesc = prometheus.NewDesc(namespace+"_certificate_ready",
		"1 when the newest version of the certificate is valid now (issued, not expired, not revoked), else 0.", certLabels, nil)
	scrapeErrorDesc = prometheus.NewDesc(namespace+"_certificate_metrics_error",
		"1 when the per-certificate metrics could not be read at this scrape.", nil, nil)
)

// certificateCollector reads the per-certificate metrics at each scrape.
type certificateCollector struct {
	source CertificateSource
	logger *slog.Logger
}

func (c *certificateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- expiryDesc
	ch <- notBeforeDesc
	ch <- renewalDesc
	ch <- readyDesc
	ch <- scrapeErrorDesc
}

// collectTimeout bounds the database read of one scrape.
const collectTimeout = 10 * time.Second

func (c *certificateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	gauges, err := c.source.CertificateGauges(ctx)
	if err != nil {
		c.logger.WarnContext(ctx, "reading certificate metrics", "error", err)
		ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 0)
	now := time.Now()
	for _, g := range gauges {
		labels := []string{g.Name, g.Provider, host(g.ACMEEndpoint)}
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, unix(g.NotAfter), labels...)
		ch <- prometheus.MustNewConstMetric(notBeforeDesc, prometheus.GaugeValue, unix(g.NotBefore), labels...)
		if !g.RenewAt.IsZero() && !g.Revoked {
			ch <- prometheus.MustNewConstMetric(renewalDesc, prometheus.GaugeValue, unix(g.RenewAt), labels...)
		}
		ready := 0.0
		if !g.Revoked && !now.Before(g.NotBefore) && now.Before(g.NotAfter) {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready, labels...)
	}
}

func unix(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// host is the host name of a directory URL.
func host(directoryURL string) string {
	u, err := url.Parse(directoryURL)
	if err != nil || u.Host == "" {
		return directoryURL
	}
	return u.Hostname()
}
