package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// acmebotTime is how Acmebot (.NET DateTimeOffset) writes times: UTC with an
// explicit +00:00 offset, to the second.
const acmebotTime = "2006-01-02T15:04:05+00:00"

// certificateItem is one item of GET /api/certificates, in Acmebot's shape,
// plus serialNumber and revoked.
type certificateItem struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	DNSNames          []string `json:"dnsNames"`
	DNSProviderName   string   `json:"dnsProviderName"`
	CreatedOn         string   `json:"createdOn"`
	ExpiresOn         string   `json:"expiresOn"`
	X509Thumbprint    string   `json:"x509Thumbprint"`
	KeyType           string   `json:"keyType"`
	KeySize           *int     `json:"keySize"`
	KeyCurveName      *string  `json:"keyCurveName"`
	ReuseKey          bool     `json:"reuseKey"`
	IsExpired         bool     `json:"isExpired"`
	IsIssuedByAcmebot bool     `json:"isIssuedByAcmebot"`
	IsSameEndpoint    bool     `json:"isSameEndpoint"`
	ACMEEndpoint      string   `json:"acmeEndpoint"`
	DNSAlias          string   `json:"dnsAlias"`
	SerialNumber      string   `json:"serialNumber"`
	Revoked           bool     `json:"revoked"`
	// Destinations is what each destination holds (issue 8).
	Destinations []destinationView `json:"destinations,omitempty"`
	// CA is the configured name of the CA that issued the version.
	CA string `json:"ca,omitempty"`
}

// certificates answers GET /api/certificates with the newest version of
// every certificate the caller may read; none is [].
func (s *server) certificates(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	versions, err := s.backend.Certificates(r.Context())
	if err != nil {
		return fmt.Errorf("listing certificates: %w", err)
	}
	now := time.Now()
	endpoints := []string{s.backend.ACMEEndpoint()}
	if cb, ok := s.backend.(CABackend); ok {
		endpoints = cb.CAEndpoints()
	}
	var states map[string][]operation.DestinationState
	if vb, ok := s.backend.(VersionBackend); ok {
		if states, err = vb.DestinationStates(r.Context()); err != nil {
			return fmt.Errorf("reading what destinations hold: %w", err)
		}
	}
	items := make([]certificateItem, 0, len(versions))
	for _, v := range versions {
		// A zone-limited caller sees only the certificates in its zones.
		if !p.Allows(auth.RoleReader, v.Spec.DNSNames) {
			continue
		}
		item := newCertificateItem(v, endpoints, now)
		item.Destinations = newDestinationViews(states[v.Name], v.ID)
		items = append(items, item)
	}
	writeJSON(w, "application/json", http.StatusOK, items)
	return nil
}

// newCertificateItem describes v; endpoints are the CA directory URLs
// configured now.
func newCertificateItem(v vault.Version, endpoints []string, now time.Time) certificateItem {
	created := v.CreatedAt
	if created.IsZero() {
		created = v.NotBefore
	}
	item := certificateItem{
		ID:                v.ID,
		Name:              v.Name,
		DNSNames:          v.Spec.DNSNames,
		DNSProviderName:   v.Spec.DNSProviderName,
		CreatedOn:         created.UTC().Format(acmebotTime),
		ExpiresOn:         v.NotAfter.UTC().Format(acmebotTime),
		X509Thumbprint:    v.Thumbprint,
		KeyType:           v.Spec.KeyType,
		ReuseKey:          v.Spec.ReuseKey,
		IsExpired:         !now.Before(v.NotAfter),
		IsIssuedByAcmebot: true,
		IsSameEndpoint:    slices.Contains(endpoints, v.ACMEEndpoint),
		ACMEEndpoint:      endpointHost(v.ACMEEndpoint),
		DNSAlias:          v.Spec.DNSAlias,
		SerialNumber:      v.Serial,
		Revoked:           v.RevokedAt != nil,
		CA:                v.CA,
	}
	if item.DNSNames == nil {
		item.DNSNames = []string{}
	}
	switch v.Spec.KeyType {
	case certificate.KeyTypeRSA:
		size := v.Spec.KeySize
		item.KeySize = &size
	case certificate.KeyTypeEC:
		curve := v.Spec.KeyCurveName
		item.KeyCurveName = &curve
	}
	return item
}

// endpointHost is the host name of a directory URL, as Acmebot shows it.
func endpointHost(directoryURL string) string {
	u, err := url.Parse(directoryURL)
	if err != nil || u.Host == "" {
		return directoryURL
	}
	return u.Hostname()
}
