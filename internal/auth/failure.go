package auth

import (
	"fmt"
	"log/slog"
	"sync"
)

// Why an authentication failed: the reason label of the failure counter.
// The set is fixed so that the metric's cardinality stays bounded.
const (
	ReasonMissing        = "missing_credential"
	ReasonUnknownKey     = "unknown_key"
	ReasonExpiredKey     = "expired_key"
	ReasonMalformedToken = "malformed_token"
	ReasonUnknownIssuer  = "unknown_issuer"
	ReasonBadSignature   = "bad_signature"
	ReasonExpiredToken   = "expired_token"
	ReasonWrongAudience  = "wrong_audience"
	ReasonRejectedClaims = "rejected_claims"
)

// FailureReasons lists every reason, for the metrics endpoint.
var FailureReasons = []string{
	ReasonMissing, ReasonUnknownKey, ReasonExpiredKey, ReasonMalformedToken, ReasonUnknownIssuer,
	ReasonBadSignature, ReasonExpiredToken, ReasonWrongAudience, ReasonRejectedClaims,
}

// The credentials a request may carry: the method label of the counters.
const (
	MethodAPIKey = "api_key"
	MethodToken  = "oidc"
)

// Failure is why a request was not authenticated. It matches
// ErrUnauthenticated with errors.Is. Its text never holds the presented key
// or token.
type Failure struct {
	// Reason is one of FailureReasons.
	Reason string
	// Method is MethodAPIKey or MethodToken; empty when nothing was presented.
	Method string
	// KeyName is the API key's name when the key is known (an expired key).
	KeyName string
	// Issuer is the token's issuer when it is a configured one.
	Issuer string
	// Err is the underlying cause, if any.
	Err error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("authentication failed (%s): %v", f.Reason, f.Err)
	}
	return fmt.Sprintf("authentication failed (%s)", f.Reason)
}

// Is makes a Failure match ErrUnauthenticated.
func (f *Failure) Is(target error) bool { return target == ErrUnauthenticated }

func (f *Failure) Unwrap() error { return f.Err }

// LogValue implements slog.LogValuer: the reason and what is known of the
// caller, never the credential.
func (f *Failure) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("reason", f.Reason)}
	if f.Method != "" {
		attrs = append(attrs, slog.String("method", f.Method))
	}
	if f.KeyName != "" {
		attrs = append(attrs, slog.String("key_name", f.KeyName))
	}
	if f.Issuer != "" {
		attrs = append(attrs, slog.String("issuer", f.Issuer))
	}
	if f.Err != nil {
		attrs = append(attrs, slog.String("error", f.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// Counters count authentication outcomes and refusals, for the metrics
// endpoint. The zero value is ready; a nil *Counters counts nothing. Safe for
// concurrent use.
type Counters struct {
	mu          sync.Mutex
	failures    map[string]uint64
	successes   map[string]uint64
	forbidden   uint64
	rateLimited uint64
}

// Sample is one counter value, named and labelled as Prometheus expects.
type Sample struct {
	Name   string
	Help   string
	Labels map[string]string
	Value  uint64
}

// The metric names of Samples.
const (
	MetricAuthFailures = "certkeeper_auth_failures_total"
	MetricAuthSuccess  = "certkeeper_auth_successes_total"
	MetricForbidden    = "certkeeper_requests_forbidden_total"
	MetricRateLimited  = "certkeeper_requests_rate_limited_total"
)

// AuthFailed counts a failed authentication.
func (c *Counters) AuthFailed(reason string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == nil {
		c.failures = map[string]uint64{}
	}
	c.failures[reason]++
}

// AuthSucceeded counts a successful authentication by method.
func (c *Counters) AuthSucceeded(method string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.successes == nil {
		c.successes = map[string]uint64{}
	}
	c.successes[method]++
}

// Forbidden counts a request refused with 403.
func (c *Counters) Forbidden() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.forbidden++
	c.mu.Unlock()
}

// RateLimited counts a request refused with 429.
func (c *Counters) RateLimited() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.rateLimited++
	c.mu.Unlock()
}

// Samples returns every counter, each failure reason and method included
// (at zero when nothing happened), in a stable order.
func (c *Counters) Samples() []Sample {
	var failures, successes map[string]uint64
	var forbidden, limited uint64
	if c != nil {
		c.mu.Lock()
		failures, successes = clone(c.failures), clone(c.successes)
		forbidden, limited = c.forbidden, c.rateLimited
		c.mu.Unlock()
	}
	var out []Sample
	for _, r := range FailureReasons {
		out = append(out, Sample{Name: MetricAuthFailures, Help: "Requests whose credential was missing or refused, by reason.",
			Labels: map[string]string{"reason": r}, Value: failures[r]})
	}
	for _, m := range []string{MethodAPIKey, MethodToken} {
		out = append(out, Sample{Name: MetricAuthSuccess, Help: "Requests authenticated, by credential.",
			Labels: map[string]string{"method": m}, Value: successes[m]})
	}
	out = append(out,
		Sample{Name: MetricForbidden, Help: "Authenticated requests refused for lack of a role or zone.", Value: forbidden},
		Sample{Name: MetricRateLimited, Help: "Requests refused by the per-caller rate limit.", Value: limited})
	return out
}

func clone(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
