package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// VersionLister is a Backend that can list every version of a certificate.
// GET /api/certificates/{certificateName}/versions is served only when the
// Backend is one.
type VersionLister interface {
	// Versions returns every version of the named certificate, newest
	// first, without private keys, or vault.ErrNotFound.
	Versions(ctx context.Context, name string) ([]vault.Version, error)
}

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

// versionItem is one item of GET /api/certificates/{name}/versions.
type versionItem struct {
	ID             string `json:"id"`
	SerialNumber   string `json:"serialNumber"`
	NotBefore      string `json:"notBefore"`
	NotAfter       string `json:"notAfter"`
	X509Thumbprint string `json:"x509Thumbprint"`
	CreatedOn      string `json:"createdOn"`
	Revoked        bool   `json:"revoked"`
	// IssuerChain names the issuers from the leaf up: the leaf's issuer,
	// then the issuer of each chain certificate that is not self-signed.
	IssuerChain []string `json:"issuerChain"`
}

// versions answers GET /api/certificates/{certificateName}/versions with
// every version of the certificate, newest first; a 404 problem for an
// unknown name.
func (s *server) versions(lister VersionLister) principalHandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
		name := r.PathValue("certificateName")
		if !certificate.NamePattern.MatchString(name) {
			return certificateNotFound(name)
		}
		list, err := lister.Versions(r.Context(), name)
		if errors.Is(err, vault.ErrNotFound) {
			return certificateNotFound(name)
		}
		if err != nil {
			return fmt.Errorf("listing versions of %s: %w", name, err)
		}
		items := make([]versionItem, 0, len(list))
		for _, v := range list {
			created := v.CreatedAt
			if created.IsZero() {
				created = v.NotBefore
			}
			items = append(items, versionItem{
				ID:             v.ID,
				SerialNumber:   v.Serial,
				NotBefore:      v.NotBefore.UTC().Format(acmebotTime),
				NotAfter:       v.NotAfter.UTC().Format(acmebotTime),
				X509Thumbprint: v.Thumbprint,
				CreatedOn:      created.UTC().Format(acmebotTime),
				Revoked:        v.RevokedAt != nil,
				IssuerChain:    issuerChain(v.CertPEM, v.ChainPEM),
			})
		}
		writeJSON(w, "application/json", http.StatusOK, items)
		return nil
	}
}

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
	return func(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
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
			views = append(views, newOperationView(op))
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
