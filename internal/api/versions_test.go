package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/vaulttest"
)

// versionBackend adds the issue 8 routes' needs to fakeBackend.
type versionBackend struct {
	*fakeBackend
	all    []vault.Version // newest first
	states map[string][]operation.DestinationState
}

var _ api.VersionBackend = (*versionBackend)(nil)

func (b *versionBackend) Versions(ctx context.Context, name string) ([]vault.Version, error) {
	var out []vault.Version
	for _, v := range b.all {
		if v.Name == name {
			v.KeyPEM = nil
			out = append(out, v)
		}
	}
	return out, nil
}

func (b *versionBackend) CertificateVersion(ctx context.Context, name, id string) (vault.Version, error) {
	for _, v := range b.all {
		if v.Name == name && v.ID == id {
			return v, nil
		}
	}
	return vault.Version{}, vault.ErrNotFound
}

func (b *versionBackend) DestinationStates(ctx context.Context) (map[string][]operation.DestinationState, error) {
	return b.states, nil
}

func TestVersions(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	older := vaulttest.NewVersion(t, "www", base)
	newer := vaulttest.NewVersion(t, "www", base.Add(24*time.Hour))
	revoked := base.Add(48 * time.Hour)
	older.RevokedAt = &revoked
	b := &versionBackend{fakeBackend: &fakeBackend{versions: []vault.Version{newer}}, all: []vault.Version{newer, older},
		states: map[string][]operation.DestinationState{"www": {
			{Destination: "kv", DeliveredVersionID: older.ID, DeliveredAt: base, LastAttemptAt: base.Add(time.Hour), LastError: "connection refused"},
			{Destination: "web", DeliveredVersionID: newer.ID, DeliveredAt: base.Add(24 * time.Hour), LastAttemptAt: base.Add(24 * time.Hour)},
		}}}
	h := api.New(api.Options{Backend: b, Auth: fakeAuth{}})

	rec := serve(t, h, request{method: "GET", path: "/api/certificates/www/versions", key: "reader"})
	if rec.Code != http.StatusOK {
		t.Fatalf("versions: %d %s", rec.Code, rec.Body)
	}
	var items []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": newer.ID, "createdOn": "2026-01-02T00:00:00+00:00", "notBefore": "2026-01-02T00:00:00+00:00",
			"expiresOn": "2026-04-02T00:00:00+00:00", "notAfter": "2026-04-02T00:00:00+00:00",
			"serialNumber": newer.Serial, "x509Thumbprint": newer.Thumbprint,
			"revoked": false, "revokedOn": nil, "current": true, "issuerChain": []any{"certkeeper vaulttest CA"}},
		{"id": older.ID, "createdOn": "2026-01-01T00:00:00+00:00", "notBefore": "2026-01-01T00:00:00+00:00",
			"expiresOn": "2026-04-01T00:00:00+00:00", "notAfter": "2026-04-01T00:00:00+00:00",
			"serialNumber": older.Serial, "x509Thumbprint": older.Thumbprint,
			"revoked": true, "revokedOn": "2026-01-03T00:00:00+00:00", "current": false,
			"issuerChain": []any{"certkeeper vaulttest CA"}},
	}
	if diff := cmp.Diff(want, items); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	wantProblem(t, serve(t, h, request{method: "GET", path: "/api/certificates/nope/versions", key: "reader"}),
		http.StatusNotFound, map[string]any{"detail": "The certificate 'nope' does not exist.", "status": float64(404), "title": "Not Found",
			"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5"})
	wantEmpty(t, serve(t, h, request{method: "GET", path: "/api/certificates/www/versions"}), http.StatusUnauthorized)

	// Any version downloads, with Certkeeper.ReadCertificate only.
	path := "/api/certificates/www/versions/" + older.ID + "/download"
	wantEmpty(t, serve(t, h, request{method: "GET", path: path, key: "reader"}), http.StatusForbidden)
	rec = serve(t, h, request{method: "GET", path: path, key: "keyreader"})
	if want := string(older.KeyPEM) + string(older.CertPEM) + string(older.ChainPEM); rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("PEM download of the older version: %d %q", rec.Code, rec.Body)
	}
	rec = serve(t, h, request{method: "GET", path: path + "?format=pfx", key: "keyreader"})
	if _, leaf, _, err := pkcs12.DecodeChain(rec.Body.Bytes(), rec.Header().Get("X-Pfx-Password")); err != nil ||
		leaf.SerialNumber.Text(16) != older.Serial {
		t.Errorf("PFX download of the older version: %v", err)
	}
	wantProblem(t, serve(t, h, request{method: "GET", path: "/api/certificates/www/versions/0123456789abcdef0123456789abcdef/download", key: "keyreader"}),
		http.StatusNotFound, map[string]any{"detail": "The certificate 'www' has no version '0123456789abcdef0123456789abcdef'.",
			"status": float64(404), "title": "Not Found", "type": "https://tools.ietf.org/html/rfc9110#section-15.5.5"})

	// /api/certificates shows what each destination holds.
	rec = serve(t, h, request{method: "GET", path: "/api/certificates", key: "reader"})
	var list []struct {
		Destinations []map[string]any `json:"destinations"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != 1 {
		t.Fatalf("certificates: %v %s", err, rec.Body)
	}
	wantDest := []map[string]any{
		{"name": "kv", "deliveredVersionId": older.ID, "deliveredOn": "2026-01-01T00:00:00+00:00",
			"lastAttemptOn": "2026-01-01T01:00:00+00:00", "lastError": "connection refused", "upToDate": false},
		{"name": "web", "deliveredVersionId": newer.ID, "deliveredOn": "2026-01-02T00:00:00+00:00",
			"lastAttemptOn": "2026-01-02T00:00:00+00:00", "lastError": "", "upToDate": true},
	}
	if diff := cmp.Diff(wantDest, list[0].Destinations); diff != "" {
		t.Errorf("destinations (-want +got):\n%s", diff)
	}
}

func TestOperationDeliveries(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	op := operation.Operation{ID: opID, Kind: operation.KindIssue, CertificateName: "www", Status: operation.StatusSucceeded,
		VersionID: opID, CreatedAt: at, UpdatedAt: at, Deliveries: []operation.Delivery{
			{Destination: "web", VersionID: opID, Status: operation.DeliveryDelivered, Attempts: 1, DeliveredAt: at, UpdatedAt: at,
				Receipt: json.RawMessage(`{"changed":true,"location":"/etc/ssl/www","command":{"command":"true","exitCode":0,"output":"","durationNs":1}}`)},
			{Destination: "kv", VersionID: opID, Status: operation.DeliveryRetrying, Attempts: 2, Error: "connection refused",
				NextAttemptAt: at.Add(time.Minute), UpdatedAt: at},
		}}
	b := &fakeBackend{ops: map[string]operation.Operation{opID: op}}
	rec := serve(t, newAPI(b, ""), request{method: "GET", path: "/api/operations/" + opID, key: "reader"})
	var got struct {
		Deliveries []map[string]any `json:"deliveries"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"destination": "web", "versionId": opID, "status": "delivered", "attempts": float64(1), "deliveredAt": "2026-01-01T00:00:00Z",
			"updatedAt": "2026-01-01T00:00:00Z", "receipt": map[string]any{"changed": true, "location": "/etc/ssl/www",
				"command": map[string]any{"command": "true", "exitCode": float64(0), "output": "", "durationNs": float64(1)}}},
		{"destination": "kv", "versionId": opID, "status": "retrying", "attempts": float64(2), "error": "connection refused",
			"nextAttemptAt": "2026-01-01T00:01:00Z", "updatedAt": "2026-01-01T00:00:00Z"},
	}
	if diff := cmp.Diff(want, got.Deliveries); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}
