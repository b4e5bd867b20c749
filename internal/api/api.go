// Package api holds certkeeper's HTTP API: the routes compatible with Key
// Vault Acmebot, authentication and role checks on them, validation of issue
// requests, and the rendering of every error as RFC 9457 problem+json.
//
// Choices where Acmebot leaves room (see the reference, acmebot-api.md):
//   - keySize is ignored when keyType is EC and keyCurveName when it is RSA,
//     since Acmebot's dashboard sends both; each must still be well typed.
//   - A certificate name that does not match certificate.NamePattern in a
//     renew or revoke path is a 404, like a name that does not exist.
//   - A body that is not one JSON object is a 400 validation problem under
//     the "$" key, as ASP.NET Core reports it. A missing Content-Type is
//     accepted; a non-JSON one is a 415 problem.
//   - GET /api/state/{id} answers 200 with an empty body once the operation
//     succeeded, as Acmebot's Ok() does.
//   - 404 and 405 are answered before authentication.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/auth"
)

// defaultMaxBodyBytes is the largest request body read when
// Options.MaxBodyBytes is zero.
const defaultMaxBodyBytes = 1 << 20

// Options configure the API handler.
type Options struct {
	// Backend serves the requests. Required.
	Backend Backend
	// Auth tells who made a request. Required.
	Auth Authenticator
	// PublicURL is the base of the absolute URLs the API answers with (the
	// Location of 202 responses), such as "https://certkeeper.example.com".
	// A trailing "/" is ignored. Empty means the scheme of the connection
	// ("https" when it is TLS, else "http") and the request's Host.
	PublicURL string
	// Logger receives one debug line per request and the private cause of
	// every error. Nil discards.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies; larger ones are answered 413. Zero
	// means 1 MiB.
	MaxBodyBytes int64
	// Access serves the key-management and audit routes and records
	// state-changing requests in the audit log; nil leaves those routes
	// out and records nothing (issue 7).
	Access Access
	// RateLimit limits issue and renew requests per caller.
	RateLimit RateLimit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the
	// caller's address (for the audit log and failure logs).
	TrustedProxies []netip.Prefix
	// Counters count authentication outcomes, 403s and 429s; nil counts
	// nothing.
	Counters *auth.Counters
}

// server is the state the handlers share. It is safe for concurrent use.
type server struct {
	backend      Backend
	auth         Authenticator
	publicURL    string
	logger       *slog.Logger
	maxBodyBytes int64
	mux          *http.ServeMux

	access         Access
	limiter        *limiter
	trustedProxies []netip.Prefix
	counters       *auth.Counters
}

// New returns the API handler. It is safe for concurrent use. Unknown paths
// answer 404 and known paths with another method 405 (with Allow), both as
// problem+json and without authentication; GET /api/ping, /healthz and
// /readyz are anonymous; every other route authenticates the caller first.
func New(opts Options) http.Handler {
	s := &server{
		backend:      opts.Backend,
		auth:         opts.Auth,
		publicURL:    strings.TrimRight(opts.PublicURL, "/"),
		logger:       opts.Logger,
		maxBodyBytes: opts.MaxBodyBytes,
		mux:          http.NewServeMux(),

		access:         opts.Access,
		limiter:        newLimiter(opts.RateLimit),
		trustedProxies: opts.TrustedProxies,
		counters:       opts.Counters,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = defaultMaxBodyBytes
	}
	s.mux.Handle("GET /api/ping", s.handle(s.ping))
	s.mux.Handle("POST /api/certificate", s.guard(issueRoute, s.issue))
	s.mux.Handle("POST /api/certificate/{certificateName}/renew", s.guard(renewRoute, s.renew))
	s.mux.Handle("POST /api/certificate/{certificateName}/revoke", s.guard(revokeRoute, s.revoke))
	s.mux.Handle("GET /api/state/{id}", s.protected(auth.RoleReader, s.state))
	s.mux.Handle("GET /api/certificates", s.protected(auth.RoleReader, s.certificates))
	s.mux.Handle("GET /api/dns-zones", s.protected(auth.RoleReader, s.dnsZones))
	s.mux.Handle("GET /api/operations/{id}", s.protected(auth.RoleReader, s.operation))
	s.mux.Handle("GET /api/certificates/{certificateName}/download", s.protected(auth.RoleReadCertificate, s.download))
	// Issue 8: every version of a certificate, and the download of any one.
	s.mux.Handle("GET /api/certificates/{certificateName}/versions", s.protected(auth.RoleReader, s.versions))
	s.mux.Handle("GET /api/certificates/{certificateName}/versions/{versionId}/download",
		s.protected(auth.RoleReadCertificate, s.versionDownload))
	// Acmebot v5 GA names (route set B) for the same requests.
	s.mux.Handle("POST /api/certificates", s.guard(issueRoute, s.issue))
	s.mux.Handle("POST /api/certificates/{certificateName}/renew", s.guard(renewRoute, s.renew))
	s.mux.Handle("POST /api/certificates/{certificateName}/revoke", s.guard(revokeRoute, s.revoke))
	// Issue 7: API keys and the audit log, for callers that are Admin in
	// every zone. The log has no route that changes it.
	if s.access != nil {
		s.mux.Handle("POST /api/keys", s.guard(route{role: auth.RoleAdmin, everywhere: true, action: ActionKeyCreate}, s.createKey))
		s.mux.Handle("GET /api/keys", s.guard(route{role: auth.RoleAdmin, everywhere: true}, s.listKeys))
		s.mux.Handle("DELETE /api/keys/{id}", s.guard(route{role: auth.RoleAdmin, everywhere: true, action: ActionKeyRevoke}, s.revokeKey))
		s.mux.Handle("GET /api/audit", s.guard(route{role: auth.RoleAdmin, everywhere: true}, s.audit))
	}
	// Issue 6: several CAs — accounts, bulk revocation, replace.
	s.mux.Handle("GET /api/account", s.guard(route{role: auth.RoleReader}, s.account))
	s.mux.Handle("POST /api/account/rollover", s.guard(route{role: auth.RoleAdmin, everywhere: true, action: ActionAccountRollover}, s.rollover))
	s.mux.Handle("POST /api/certificates/revoke", s.guard(route{role: auth.RoleRevoke, action: ActionRevoke}, s.revokeMany))
	s.mux.Handle("POST /api/certificate/{certificateName}/replace", s.guard(replaceRoute, s.replace))
	s.mux.Handle("POST /api/certificates/{certificateName}/replace", s.guard(replaceRoute, s.replace))
	// Issue 5: automatic renewal schedules (Acmebot v5's GET /api/renewals).
	s.mux.Handle("GET /api/renewals", s.guard(route{role: auth.RoleReader}, s.renewals))
	// Issue 9: what the dashboard reads — the caller, and operation lists
	// when the Backend can list them.
	s.mux.Handle("GET /api/me", s.guard(route{role: auth.RoleReader}, s.me))
	if l, ok := s.backend.(OperationLister); ok {
		s.mux.Handle("GET /api/operations", s.guard(route{role: auth.RoleReader}, s.operations(l)))
	}
	return http.HandlerFunc(s.serveHTTP)
}

// handlerFunc is a handler that returns its error for the adapter to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// principalHandlerFunc is a handlerFunc for an authenticated caller.
type principalHandlerFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// serveHTTP is the outermost layer: trace id, Cache-Control, panic recovery,
// route matching and the request log line.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := context.WithValue(r.Context(), traceKey{}, traceIDFrom(r.Header.Get("traceparent")))
	r = r.WithContext(ctx)
	rw := &responseWriter{ResponseWriter: w}
	rw.Header().Set("Cache-Control", "no-store")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.ErrorContext(ctx, "panic serving request",
				"method", r.Method, "path", r.URL.Path, "panic", v, "trace_id", traceID(ctx))
			if !rw.wroteHeader {
				s.render(rw, r, &httpError{status: http.StatusInternalServerError})
			}
		}
		status := rw.status
		if !rw.wroteHeader {
			status = http.StatusOK
		}
		s.logger.DebugContext(ctx, "request",
			"method", r.Method, "path", r.URL.Path, "status", status,
			"duration", time.Since(start), "trace_id", traceID(ctx))
	}()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.render(rw, r, s.unmatched(r))
		return
	}
	s.mux.ServeHTTP(rw, r)
}

// unmatched returns the 404 or 405 for a request no route matched.
func (s *server) unmatched(r *http.Request) *httpError {
	h, _ := s.mux.Handler(r)
	probe := &probeWriter{header: make(http.Header)}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		return &httpError{
			status: http.StatusMethodNotAllowed,
			detail: "The method " + r.Method + " is not allowed on " + r.URL.Path + ".",
			header: http.Header{"Allow": {probe.header.Get("Allow")}},
		}
	}
	return &httpError{status: http.StatusNotFound, detail: "There is no resource at " + r.URL.Path + "."}
}

// handle adapts an anonymous handlerFunc, rendering its error.
func (s *server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.render(w, r, err)
		}
	})
}

// baseURL is the absolute URL the API is served at, without a trailing "/".
func (s *server) baseURL(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// traceKey is the context key of the request's W3C trace id.
type traceKey struct{}

// traceID returns the 32-hex trace id of the request ctx belongs to.
func traceID(ctx context.Context) string {
	id, _ := ctx.Value(traceKey{}).(string)
	return id
}

// traceIDFrom returns the trace id of a W3C traceparent header
// (https://www.w3.org/TR/trace-context/#traceparent-header) when it is valid,
// else a random one.
func traceIDFrom(traceparent string) string {
	parts := strings.Split(strings.TrimSpace(traceparent), "-")
	if len(parts) >= 4 && len(parts[0]) == 2 && parts[0] != "ff" && isLowerHex(parts[0]) &&
		len(parts[1]) == 32 && isLowerHex(parts[1]) && strings.Trim(parts[1], "0") != "" &&
		len(parts[2]) == 16 && isLowerHex(parts[2]) && strings.Trim(parts[2], "0") != "" &&
		len(parts[3]) == 2 && isLowerHex(parts[3]) && (parts[0] != "00" || len(parts) == 4) {
		return parts[1]
	}
	return randomHex(16)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b)
}

// responseWriter records the status written, for the log line and the panic
// handler.
type responseWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status = status
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// probeWriter captures what ServeMux's own 404 and 405 handlers would write.
type probeWriter struct {
	header http.Header
	status int
}

func (w *probeWriter) Header() http.Header { return w.header }

func (w *probeWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *probeWriter) WriteHeader(status int) { w.status = status }
