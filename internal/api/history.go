package api

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
)

// OperationLister is a Backend that can list operations. GET
// /api/operations is served only when the Backend is one.
type OperationLister interface {
	// Operations returns the operations f selects, newest first.
	Operations(ctx context.Context, f OperationFilter) ([]operation.Operation, error)
}

// OperationFilter selects operations for OperationLister.
type OperationFilter struct {
	// CertificateName keeps one certificate's operations; empty keeps all.
	CertificateName string
	// Statuses keeps operations in one of these statuses; empty keeps all.
	Statuses []operation.Status
	// Limit is the most operations to return, 1 to MaxOperationsLimit.
	Limit int
}

// Limits of GET /api/operations.
const (
	// DefaultOperationsLimit is how many operations are listed without a
	// limit parameter.
	DefaultOperationsLimit = 50
	// MaxOperationsLimit is the largest limit parameter accepted.
	MaxOperationsLimit = 200
)

// issuerChain names the issuers of a leaf and its chain, from the leaf up.
// What cannot be parsed is left out: the chain is shown to people, never
// relied on.
func issuerChain(certPEM, chainPEM []byte) []string {
	certs, err := parseCertificates(append(append([]byte{}, certPEM...), chainPEM...))
	out := []string{}
	if err != nil {
		return out
	}
	for _, c := range certs {
		if c.CheckSignatureFrom(c) == nil && len(out) > 0 {
			break // a self-signed root closes the chain; its issuer is itself
		}
		out = append(out, displayName(c))
	}
	return out
}

// displayName is the issuer's common name, or its whole distinguished name
// when it has none.
func displayName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// operations answers GET /api/operations with the newest operations first.
// Query parameters: certificate (a certificate name), status (pending,
// running, succeeded or failed; repeated or comma-separated), limit (1 to
// MaxOperationsLimit, default DefaultOperationsLimit). A bad parameter is a
// 400 validation problem.
func (s *server) operations(lister OperationLister) principalHandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		f, errs := parseOperationFilter(r)
		if errs != nil {
			return validationError(errs)
		}
		list, err := lister.Operations(r.Context(), f)
		if err != nil {
			return fmt.Errorf("listing operations: %w", err)
		}
		views := make([]*operationView, 0, len(list))
		for _, op := range list {
			if canSee(p, op) { // a zone-limited caller sees only its own
				views = append(views, newOperationView(op))
			}
		}
		writeJSON(w, "application/json", http.StatusOK, views)
		return nil
	}
}

var operationStatuses = []operation.Status{
	operation.StatusPending, operation.StatusRunning, operation.StatusSucceeded, operation.StatusFailed,
}

// parseOperationFilter reads the query of GET /api/operations.
func parseOperationFilter(r *http.Request) (OperationFilter, fieldErrors) {
	q := r.URL.Query()
	errs := fieldErrors{}
	f := OperationFilter{CertificateName: q.Get("certificate"), Limit: DefaultOperationsLimit}
	if f.CertificateName != "" && !certificate.NamePattern.MatchString(f.CertificateName) {
		errs.add("Certificate", "The field Certificate must match the regular expression %s.", certificateNameRule)
	}
	for _, raw := range q["status"] {
		for st := range strings.SplitSeq(raw, ",") {
			status := operation.Status(strings.ToLower(strings.TrimSpace(st)))
			switch {
			case status == "":
			case !slices.Contains(operationStatuses, status):
				errs.add("Status", "The Status must be pending, running, succeeded, or failed.")
			case !slices.Contains(f.Statuses, status):
				f.Statuses = append(f.Statuses, status)
			}
		}
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > MaxOperationsLimit {
			errs.add("Limit", "The Limit must be a whole number from 1 to %d.", MaxOperationsLimit)
		}
		f.Limit = n
	}
	if len(errs) > 0 {
		return OperationFilter{}, errs
	}
	return f, nil
}

// meView is what GET /api/me answers: who the caller is and what it may do,
// so that a client shows only what will work.
type meView struct {
	Name               string      `json:"name"`
	Roles              []auth.Role `json:"roles"`
	CanIssue           bool        `json:"canIssue"`
	CanRevoke          bool        `json:"canRevoke"`
	CanReadCertificate bool        `json:"canReadCertificate"`
	IsAdmin            bool        `json:"isAdmin"`
}

// me answers GET /api/me.
func (s *server) me(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	roles := p.Roles
	if roles == nil {
		roles = []auth.Role{}
	}
	writeJSON(w, "application/json", http.StatusOK, meView{
		Name:               p.Name,
		Roles:              roles,
		CanIssue:           p.Has(auth.RoleIssue),
		CanRevoke:          p.Has(auth.RoleRevoke),
		CanReadCertificate: p.Has(auth.RoleReadCertificate),
		IsAdmin:            p.Has(auth.RoleAdmin),
	})
	return nil
}
