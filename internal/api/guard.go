package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// route is what a protected route asks of its caller.
type route struct {
	// role must be held somewhere (403 otherwise).
	role auth.Role
	// everywhere requires role in every zone: key management and the audit
	// log are not for zone-limited callers.
	everywhere bool
	// action, when set, records every request in the audit log under it.
	action string
	// limited applies the per-caller rate limit.
	limited bool
}

// The routes that change certificates: audited; issue and renew are rate
// limited.
var (
	issueRoute  = route{role: auth.RoleIssue, action: ActionIssue, limited: true}
	renewRoute  = route{role: auth.RoleIssue, action: ActionRenew, limited: true}
	revokeRoute = route{role: auth.RoleRevoke, action: ActionRevoke}
	// replaceRoute needs the issue role here; the handler checks revoke too.
	replaceRoute = route{role: auth.RoleIssue, action: ActionReplace, limited: true}
)

// protected authenticates the caller (401), checks role (403) and then runs
// h, rendering its error.
func (s *server) protected(role auth.Role, h principalHandlerFunc) http.Handler {
	return s.guard(route{role: role}, h)
}

// guard authenticates the caller (401), checks the route's role (403) and
// rate limit (429), runs h with the caller in the request context, renders
// its error, and records the request in the audit log when the route
// changes state.
func (s *server) guard(rt route, h principalHandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Authenticate(r)
		if err != nil {
			s.render(w, r, s.unauthenticated(r, err))
			return
		}
		s.counters.AuthSucceeded(authMethod(p))
		note := &auditNote{}
		r = r.WithContext(auth.NewContext(context.WithValue(r.Context(), noteKey{}, note), p))
		rec := &statusRecorder{ResponseWriter: w}
		err = s.admit(rt, r, p)
		if err == nil {
			err = h(rec, r, p)
		}
		if err != nil {
			s.render(rec, r, err)
		}
		if rt.action != "" {
			s.record(r, p, rt.action, note, rec.code(), err)
		}
	})
}

func authMethod(p auth.Principal) string {
	if p.Kind == auth.KindToken {
		return auth.MethodToken
	}
	return auth.MethodAPIKey
}

// unauthenticated turns an authentication error into the response: 401
// with an empty body for a missing or refused credential (counted, and
// logged without the credential), 500 when it could not be checked.
func (s *server) unauthenticated(r *http.Request, err error) *httpError {
	if !errors.Is(err, auth.ErrUnauthenticated) {
		return &httpError{status: http.StatusInternalServerError, cause: fmt.Errorf("authenticating request: %w", err)}
	}
	reason := auth.ReasonUnknownKey
	f, _ := errors.AsType[*auth.Failure](err)
	if f != nil {
		reason = f.Reason
	}
	s.counters.AuthFailed(reason)
	level := slog.LevelWarn
	if reason == auth.ReasonMissing {
		level = slog.LevelDebug
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "address", s.clientAddress(r), "trace_id", traceID(r.Context())}
	if f != nil {
		attrs = append(attrs, "failure", f)
	} else {
		attrs = append(attrs, "reason", reason)
	}
	s.logger.Log(r.Context(), level, "authentication failed", attrs...)
	return &httpError{status: http.StatusUnauthorized, empty: true, header: http.Header{"Www-Authenticate": {"Bearer"}}}
}

// admit checks the route's role and rate limit for p.
func (s *server) admit(rt route, r *http.Request, p auth.Principal) error {
	if !p.Has(rt.role) {
		return s.forbidden(fmt.Errorf("caller %q lacks role %s", p.Name, rt.role))
	}
	if rt.everywhere && !p.Unlimited(rt.role) {
		return s.forbidden(fmt.Errorf("caller %q holds %s only in some zones", p.Name, rt.role))
	}
	if rt.limited {
		if ok, wait := s.limiter.allow(p.Actor()); !ok {
			s.counters.RateLimited()
			return &httpError{status: http.StatusTooManyRequests,
				detail: fmt.Sprintf("Too many requests from %s; try again in %d seconds.", p.Name, retryAfter(wait)),
				header: http.Header{"Retry-After": {strconv.Itoa(retryAfter(wait))}}}
		}
	}
	return nil
}

// forbidden is the 403 (empty body, as Acmebot) for cause, counted.
func (s *server) forbidden(cause error) *httpError {
	s.counters.Forbidden()
	return &httpError{status: http.StatusForbidden, empty: true, cause: cause}
}

// allow answers 403 unless p may act with role on a certificate for names.
func (s *server) allow(p auth.Principal, role auth.Role, what string, names []string) error {
	if p.Allows(role, names) {
		return nil
	}
	return s.forbidden(fmt.Errorf("caller %q may not %s %s: not every name is in its zones for %s",
		p.Name, what, strings.Join(names, ", "), role))
}

// allowCertificate answers 404 for an unknown certificate and 403 unless p
// may act with role on it.
func (s *server) allowCertificate(ctx context.Context, p auth.Principal, role auth.Role, what, name string) error {
	spec, err := s.backend.CertificateSpec(ctx, name)
	if errors.Is(err, vault.ErrNotFound) {
		return certificateNotFound(name)
	}
	if err != nil {
		return fmt.Errorf("reading certificate %s: %w", name, err)
	}
	return s.allow(p, role, what, scopeNames(spec.DNSNames, spec.DNSAlias))
}

// canSee reports whether p may see op: callers who read in every zone see
// every operation, zone-limited callers only those they started.
func canSee(p auth.Principal, op operation.Operation) bool {
	return p.Unlimited(auth.RoleReader) || (op.CreatedBy != "" && op.CreatedBy == p.Actor())
}

// mayPoll answers 403 unless p may see op: its own operations, or any when
// p reads in every zone.
func (s *server) mayPoll(p auth.Principal, op operation.Operation) error {
	if canSee(p, op) {
		return nil
	}
	return s.forbidden(fmt.Errorf("caller %q may not see operation %s of %q", p.Name, op.ID, op.CreatedByName))
}

// scopeNames are the names a grant must cover to act on a certificate: its
// DNS names, and the alias zone its challenge records are written in.
func scopeNames(dnsNames []string, alias string) []string {
	names := slices.Clone(dnsNames)
	if alias != "" {
		names = append(names, alias)
	}
	return names
}

// noteKey is the context key of the request's auditNote.
type noteKey struct{}

// auditNote is what a handler tells the audit log about its request.
type auditNote struct {
	certificate string
	operation   string
	detail      string
}

// noteFrom returns the request's auditNote; a fresh one when there is none.
func noteFrom(ctx context.Context) *auditNote {
	if n, ok := ctx.Value(noteKey{}).(*auditNote); ok {
		return n
	}
	return &auditNote{}
}

// maxAuditDetail bounds the detail recorded for one request.
const maxAuditDetail = 2000

// record appends a state-changing request to the audit log. A failure to
// record is logged: the request itself has already been answered.
func (s *server) record(r *http.Request, p auth.Principal, action string, note *auditNote, status int, err error) {
	if s.access == nil {
		return
	}
	e := AuditEntry{
		At:          time.Now().UTC(),
		Actor:       actorOf(p),
		Action:      action,
		Certificate: note.certificate,
		Operation:   note.operation,
		Address:     s.clientAddress(r),
		Result:      resultOf(status),
		Status:      status,
		Detail:      note.detail,
		TraceID:     traceID(r.Context()),
	}
	if err != nil {
		e.Detail = errorDetail(err)
	}
	if len(e.Detail) > maxAuditDetail {
		e.Detail = e.Detail[:maxAuditDetail] + "…"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.access.RecordAudit(ctx, e); err != nil {
		s.logger.ErrorContext(ctx, "recording a request in the audit log", "action", action, "actor", e.Actor.ID,
			"certificate", e.Certificate, "status", status, "error", err, "trace_id", e.TraceID)
	}
}

// actorOf describes p for the audit log.
func actorOf(p auth.Principal) AuditActor {
	kind := p.Kind
	if kind == "" {
		kind = auth.KindAPIKey
	}
	return AuditActor{Kind: kind, ID: p.Actor(), Name: p.Name, Issuer: p.Issuer}
}

// resultOf is the audit log's word for a status.
func resultOf(status int) string {
	switch {
	case status == http.StatusAccepted:
		return "accepted"
	case status < 300:
		return "succeeded"
	case status == http.StatusForbidden:
		return "denied"
	case status == http.StatusTooManyRequests:
		return "rate_limited"
	case status < 500:
		return "rejected"
	}
	return "failed"
}

// errorDetail is what the audit log keeps of a handler's error: its private
// cause (the audit log is for administrators), else its public detail or
// validation messages.
func errorDetail(err error) string {
	he, ok := errors.AsType[*httpError](err)
	if !ok {
		return err.Error()
	}
	switch {
	case he.cause != nil:
		return he.cause.Error()
	case he.detail != "":
		return he.detail
	case len(he.errors) > 0:
		var parts []string
		for _, field := range slices.Sorted(maps.Keys(he.errors)) {
			parts = append(parts, field+": "+strings.Join(he.errors[field], " "))
		}
		return strings.Join(parts, "; ")
	}
	return http.StatusText(he.status)
}

// clientAddress is the caller's IP address: the connection's peer, or, when
// the peer is a trusted proxy, the nearest address in X-Forwarded-For that
// is not a trusted proxy.
func (s *server) clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		addr, err := netip.ParseAddr(hop)
		if err != nil {
			break
		}
		if !s.trusted(addr) {
			return addr.String()
		}
		host = addr.String()
	}
	return host
}

func (s *server) trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range s.trustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// statusRecorder remembers the status written, for the audit log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
