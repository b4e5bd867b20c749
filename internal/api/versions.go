package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// VersionBackend is what the routes of issue 8 need besides Backend: every
// version of a certificate, and what each destination holds. A Backend that
// implements it serves GET /api/certificates/{name}/versions, the download
// of any version, and the destinations of /api/certificates items.
type VersionBackend interface {
	// Versions returns every version of the named certificate, newest
	// first, without private keys, or vault.ErrNotFound.
	Versions(ctx context.Context, name string) ([]vault.Version, error)
	// CertificateVersion returns the version id of the named certificate
	// with its private key, or vault.ErrNotFound.
	CertificateVersion(ctx context.Context, name, id string) (vault.Version, error)
	// DestinationStates returns, per certificate name, what each
	// destination holds of it.
	DestinationStates(ctx context.Context) (map[string][]operation.DestinationState, error)
}

// versionItem is one item of GET /api/certificates/{name}/versions.
type versionItem struct {
	ID             string  `json:"id"`
	CreatedOn      string  `json:"createdOn"`
	NotBefore      string  `json:"notBefore"`
	ExpiresOn      string  `json:"expiresOn"`
	NotAfter       string  `json:"notAfter"`
	SerialNumber   string  `json:"serialNumber"`
	X509Thumbprint string  `json:"x509Thumbprint"`
	Revoked        bool    `json:"revoked"`
	RevokedOn      *string `json:"revokedOn"`
	// Current is true for the newest version.
	Current bool `json:"current"`
	// IssuerChain names the issuers from the leaf up: the leaf's issuer,
	// then the issuer of each chain certificate that is not self-signed.
	IssuerChain []string `json:"issuerChain"`
}

// destinationView is what one destination holds of a certificate, in
// /api/certificates items.
type destinationView struct {
	Name               string  `json:"name"`
	DeliveredVersionID string  `json:"deliveredVersionId"`
	DeliveredOn        *string `json:"deliveredOn"`
	LastAttemptOn      *string `json:"lastAttemptOn"`
	LastError          string  `json:"lastError"`
	// UpToDate is true when the destination holds the newest version.
	UpToDate bool `json:"upToDate"`
}

// deliveryView is one delivery in GET /api/operations/{id}.
type deliveryView struct {
	Destination   string                   `json:"destination"`
	VersionID     string                   `json:"versionId"`
	Status        operation.DeliveryStatus `json:"status"`
	Attempts      int                      `json:"attempts"`
	Error         string                   `json:"error,omitempty"`
	Receipt       json.RawMessage          `json:"receipt,omitempty"`
	DeliveredAt   *time.Time               `json:"deliveredAt,omitempty"`
	NextAttemptAt *time.Time               `json:"nextAttemptAt,omitempty"`
	UpdatedAt     time.Time                `json:"updatedAt"`
}

func newDeliveryViews(ds []operation.Delivery) []deliveryView {
	out := make([]deliveryView, 0, len(ds))
	for _, d := range ds {
		v := deliveryView{Destination: d.Destination, VersionID: d.VersionID, Status: d.Status, Attempts: d.Attempts,
			Error: d.Error, Receipt: d.Receipt, UpdatedAt: d.UpdatedAt}
		if !d.DeliveredAt.IsZero() {
			at := d.DeliveredAt
			v.DeliveredAt = &at
		}
		if !d.NextAttemptAt.IsZero() {
			at := d.NextAttemptAt
			v.NextAttemptAt = &at
		}
		out = append(out, v)
	}
	return out
}

func acmebotTimeOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(acmebotTime)
	return &s
}

func newDestinationViews(states []operation.DestinationState, newest string) []destinationView {
	out := make([]destinationView, 0, len(states))
	for _, st := range states {
		out = append(out, destinationView{Name: st.Destination, DeliveredVersionID: st.DeliveredVersionID,
			DeliveredOn: acmebotTimeOrNil(st.DeliveredAt), LastAttemptOn: acmebotTimeOrNil(st.LastAttemptAt),
			LastError: st.LastError, UpToDate: st.DeliveredVersionID == newest})
	}
	return out
}

func (s *server) versionBackend() (VersionBackend, error) {
	vb, ok := s.backend.(VersionBackend)
	if !ok {
		return nil, &httpError{status: http.StatusNotFound, detail: "Certificate versions are not available."}
	}
	return vb, nil
}

// versions answers GET /api/certificates/{certificateName}/versions.
func (s *server) versions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name := r.PathValue("certificateName")
	vb, err := s.versionBackend()
	if err != nil {
		return err
	}
	if !certificate.NamePattern.MatchString(name) {
		return certificateNotFound(name)
	}
	list, err := vb.Versions(r.Context(), name)
	if errors.Is(err, vault.ErrNotFound) || err == nil && len(list) == 0 {
		return certificateNotFound(name)
	}
	if err != nil {
		return fmt.Errorf("listing the versions of %s: %w", name, err)
	}
	if err := s.allow(p, auth.RoleReader, "list versions", list[0].Spec.DNSNames); err != nil {
		return err
	}
	items := make([]versionItem, 0, len(list))
	for i, v := range list {
		item := versionItem{ID: v.ID, CreatedOn: v.CreatedAt.UTC().Format(acmebotTime),
			NotBefore: v.NotBefore.UTC().Format(acmebotTime), ExpiresOn: v.NotAfter.UTC().Format(acmebotTime),
			NotAfter: v.NotAfter.UTC().Format(acmebotTime), IssuerChain: issuerChain(v.CertPEM, v.ChainPEM),
			SerialNumber: v.Serial, X509Thumbprint: v.Thumbprint, Revoked: v.RevokedAt != nil, Current: i == 0}
		if v.RevokedAt != nil {
			item.RevokedOn = acmebotTimeOrNil(*v.RevokedAt)
		}
		items = append(items, item)
	}
	writeJSON(w, "application/json", http.StatusOK, items)
	return nil
}

// versionDownload answers GET
// /api/certificates/{certificateName}/versions/{versionId}/download like
// the download of the newest version.
func (s *server) versionDownload(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name, id := r.PathValue("certificateName"), r.PathValue("versionId")
	vb, err := s.versionBackend()
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "pem"
	}
	if format != "pem" && format != "pfx" {
		return validationError(map[string][]string{"Format": {"The Format must be pem or pfx."}})
	}
	notFound := &httpError{status: http.StatusNotFound,
		detail: fmt.Sprintf("The certificate '%s' has no version '%s'.", name, id)}
	if !certificate.NamePattern.MatchString(name) || !operation.ValidID(id) {
		return notFound
	}
	v, err := vb.CertificateVersion(r.Context(), name, id)
	if errors.Is(err, vault.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("reading version %s of %s: %w", id, name, err)
	}
	return s.writeDownload(w, r, p, v, format)
}
