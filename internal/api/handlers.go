package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// ping answers GET /api/ping, anonymously, so that load balancers and
// clients can check the service is up.
func (s *server) ping(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, "application/json", http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// issue answers POST /api/certificate: 202 with the operation's Location.
func (s *server) issue(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	spec, errs := parseIssueRequest(body)
	if errs != nil {
		return validationError(errs)
	}
	noteFrom(r.Context()).certificate = spec.Name
	if err := s.allow(p, auth.RoleIssue, "issue", scopeNames(spec.DNSNames, spec.DNSAlias)); err != nil {
		return err
	}
	if isDryRun(r) {
		return s.dryRun(w, r, spec)
	}
	id, err := s.backend.Issue(r.Context(), spec)
	if ie, ok := errors.AsType[*InvalidError](err); ok {
		return validationError(fieldErrors{ie.Field: {ie.Message}})
	}
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, detail: err.Error(),
			cause: fmt.Errorf("issuing certificate %q for %s: %w", spec.Name, p.Name, err)}
	}
	s.accepted(w, r, id)
	return nil
}

// renew answers POST /api/certificate/{certificateName}/renew: 202 with the
// operation's Location. A name that cannot exist (it does not match
// certificate.NamePattern) is a 404, like a name that does not exist.
func (s *server) renew(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name := r.PathValue("certificateName")
	if !certificate.NamePattern.MatchString(name) {
		return certificateNotFound(name)
	}
	noteFrom(r.Context()).certificate = name
	if err := s.allowCertificate(r.Context(), p, auth.RoleIssue, "renew", name); err != nil {
		return err
	}
	id, err := s.backend.Renew(r.Context(), name)
	if errors.Is(err, vault.ErrNotFound) {
		return certificateNotFound(name)
	}
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, detail: err.Error(),
			cause: fmt.Errorf("renewing certificate %q for %s: %w", name, p.Name, err)}
	}
	s.accepted(w, r, id)
	return nil
}

// revocationReasons are the RFC 5280 section 5.3.1 reason codes a revoke
// request may give, by name.
var revocationReasons = map[string]int{
	"unspecified":          0,
	"keycompromise":        1,
	"affiliationchanged":   3,
	"superseded":           4,
	"cessationofoperation": 5,
}

// revocationReasonMessage is the validation message for a bad reason.
const revocationReasonMessage = "The Reason must be one of unspecified (0), keyCompromise (1), " +
	"affiliationChanged (3), superseded (4), or cessationOfOperation (5)."

// revoke answers POST /api/certificate/{certificateName}/revoke: 200 with an
// empty body once the CA confirmed, a 404 problem for an unknown name, a 500
// problem carrying the CA's words when it refused. The optional body is
// {"reason": "keyCompromise"}, the reason given by name, code or numeric
// string; it defaults to unspecified (0).
func (s *server) revoke(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name := r.PathValue("certificateName")
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	reason, errs := parseRevokeRequest(body)
	if errs != nil {
		return validationError(errs)
	}
	if !certificate.NamePattern.MatchString(name) {
		return certificateNotFound(name)
	}
	noteFrom(r.Context()).certificate = name
	if err := s.allowCertificate(r.Context(), p, auth.RoleRevoke, "revoke", name); err != nil {
		return err
	}
	err = s.backend.Revoke(r.Context(), name, reason)
	if errors.Is(err, vault.ErrNotFound) {
		return certificateNotFound(name)
	}
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, detail: err.Error(),
			cause: fmt.Errorf("revoking certificate %q for %s: %w", name, p.Name, err)}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// parseRevokeRequest returns the reason code of a revoke request body; an
// empty body means unspecified (0).
func parseRevokeRequest(body []byte) (int, fieldErrors) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return 0, nil
	}
	errs := fieldErrors{}
	obj, msg := jsonObject(body)
	if msg != "" {
		errs.add(bodyField, "%s", msg)
		return 0, errs
	}
	raw := obj["reason"]
	if s, ok := stringValue(raw); ok && raw != nil && raw[0] == '"' {
		if code, ok := revocationReasons[strings.ToLower(strings.TrimSpace(s))]; ok {
			return code, nil
		}
	}
	code, present, ok := intValue(raw)
	if !present && ok {
		return 0, nil
	}
	if ok && slices.Contains(slices.Collect(maps.Values(revocationReasons)), code) {
		return code, nil
	}
	errs.add("Reason", revocationReasonMessage)
	return 0, errs
}

// state answers GET /api/state/{id}: 202 with the same Location while the
// operation is pending or running, 200 with an empty body once it succeeded
// (as Acmebot), a 500 problem whose detail is "<step>: <error>" when it
// failed, and a 400 problem for an unknown id.
func (s *server) state(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	read := s.backend.Operation
	if sr, ok := s.backend.(OperationStatusReader); ok {
		read = sr.OperationStatus
	}
	op, err := s.readOperation(r, read)
	if err != nil {
		return err
	}
	id := op.ID
	if err := s.mayPoll(p, op); err != nil {
		return err
	}
	switch op.Status {
	case operation.StatusPending, operation.StatusRunning:
		s.accepted(w, r, id)
	case operation.StatusSucceeded:
		w.WriteHeader(http.StatusOK)
	case operation.StatusFailed:
		return operationFailed(op)
	default:
		return fmt.Errorf("operation %s has unknown status %q", id, op.Status)
	}
	return nil
}

// lookupOperation returns the operation named by the {id} path value, or
// the 400 problem for an id that is malformed or unknown.
func (s *server) lookupOperation(r *http.Request) (operation.Operation, error) {
	return s.readOperation(r, s.backend.Operation)
}

// readOperation is lookupOperation reading the operation with read.
func (s *server) readOperation(r *http.Request, read func(context.Context, string) (operation.Operation, error)) (operation.Operation, error) {
	id := r.PathValue("id")
	unknown := &httpError{status: http.StatusBadRequest, detail: fmt.Sprintf("The operation '%s' does not exist.", id)}
	if !operation.ValidID(id) {
		return operation.Operation{}, unknown
	}
	op, err := read(r.Context(), id)
	if errors.Is(err, ErrOperationNotFound) {
		return operation.Operation{}, unknown
	}
	if err != nil {
		return operation.Operation{}, fmt.Errorf("reading operation %s: %w", id, err)
	}
	op.ID = id
	return op, nil
}

// operationFailed is the 500 problem of a failed operation; its detail is
// "<step>: <error>".
func operationFailed(op operation.Operation) *httpError {
	if op.Error == "" {
		op.Error = "the operation failed"
	}
	detail := op.Failure()
	return &httpError{status: http.StatusInternalServerError, detail: detail}
}

// accepted answers 202 with the Location of operation id and no body.
func (s *server) accepted(w http.ResponseWriter, r *http.Request, id string) {
	noteFrom(r.Context()).operation = id
	w.Header().Set("Location", s.baseURL(r)+"/api/state/"+id)
	w.WriteHeader(http.StatusAccepted)
}

// certificateNotFound is the 404 problem for an unknown certificate name.
func certificateNotFound(name string) *httpError {
	return &httpError{status: http.StatusNotFound, detail: fmt.Sprintf("The certificate '%s' does not exist.", name)}
}

// dnsZoneGroup is one item of GET /api/dns-zones.
type dnsZoneGroup struct {
	DNSProviderName string    `json:"dnsProviderName"`
	DNSZones        []dnsZone `json:"dnsZones"`
	// Error says why the provider's zones could not be listed, or which of
	// them another provider also claims; absent when all is well.
	Error string `json:"error,omitempty"`
}

type dnsZone struct {
	Name string `json:"name"`
}

// dnsZones answers GET /api/dns-zones. Every provider has its entry; one
// whose listing failed has no zones and its error in "error" (Acmebot
// clients read only dnsProviderName and dnsZones, so the entry is harmless
// to them), and the others are listed all the same. A zone-limited caller sees only
// the zones it may act in, and no entry for a provider with none of them.
func (s *server) dnsZones(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	groups := s.backend.DNSZones(r.Context())
	out := make([]dnsZoneGroup, 0, len(groups))
	for _, g := range groups {
		entry := dnsZoneGroup{DNSProviderName: g.ProviderName, DNSZones: make([]dnsZone, 0, len(g.Zones))}
		if g.Err != nil {
			s.logger.WarnContext(r.Context(), "listing dns zones failed",
				"provider", g.ProviderName, "error", g.Err.Error(), "trace_id", traceID(r.Context()))
			entry.Error = g.Err.Error()
		}
		for _, z := range g.Zones {
			// A zone-limited caller sees the zones it may act in.
			if p.Overlaps(z) {
				entry.DNSZones = append(entry.DNSZones, dnsZone{Name: z})
			}
		}
		if len(entry.DNSZones) == 0 && len(g.Zones) > 0 {
			continue
		}
		out = append(out, entry)
	}
	writeJSON(w, "application/json", http.StatusOK, out)
	return nil
}
