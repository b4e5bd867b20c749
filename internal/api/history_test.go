package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// historyBackend is a fakeBackend that can also list versions and
// operations, as the real backend can.
type historyBackend struct {
	*fakeBackend
	history map[string][]vault.Version
	ops     []operation.Operation
	filters []api.OperationFilter
}

var (
	_ api.VersionBackend  = (*historyBackend)(nil)
	_ api.OperationLister = (*historyBackend)(nil)
)

func (b *historyBackend) CertificateVersion(ctx context.Context, name, id string) (vault.Version, error) {
	for _, v := range b.history[name] {
		if v.ID == id {
			return v, nil
		}
	}
	return vault.Version{}, vault.ErrNotFound
}

func (b *historyBackend) DestinationStates(ctx context.Context) (map[string][]operation.DestinationState, error) {
	return nil, nil
}

func (b *historyBackend) Versions(ctx context.Context, name string) ([]vault.Version, error) {
	v, ok := b.history[name]
	if !ok {
		return nil, vault.ErrNotFound
	}
	return v, nil
}

func (b *historyBackend) Operations(ctx context.Context, f api.OperationFilter) ([]operation.Operation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.filters = append(b.filters, f)
	return b.ops, nil
}

// testChain returns a root, an intermediate signed by it and a leaf signed
// by the intermediate, as PEM: the leaf, and the intermediate then the root.
func testChain(t *testing.T) (leafPEM, chainPEM []byte) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	rootKey, interKey, leafKey := newKey(), newKey(), newKey()
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root CA"},
		NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	inter := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Intermediate CA"},
		NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(3), DNSNames: []string{"www.example.test"},
		NotBefore: now, NotAfter: now.Add(time.Hour)}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	interDER, err := x509.CreateCertificate(rand.Reader, inter, rootCert, &interKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	interCert, _ := x509.ParseCertificate(interDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, interCert, &leafKey.PublicKey, interKey)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	return enc(leafDER), append(enc(interDER), enc(rootDER)...)
}

// TestVersionsShowTheChain checks what the dashboard reads from the version
// list beside the rest (versions_test.go): the end of validity and the names
// of the issuers up the chain.
func TestVersionsShowTheChain(t *testing.T) {
	t.Parallel()
	leafPEM, chainPEM := testChain(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	revokedAt := base.Add(48 * time.Hour)
	b := &historyBackend{fakeBackend: &fakeBackend{}, history: map[string][]vault.Version{
		"www": {
			{ID: "v2", Name: "www", Serial: "02", Thumbprint: "BB", NotBefore: base.Add(24 * time.Hour),
				NotAfter: base.Add(91 * 24 * time.Hour), CreatedAt: base.Add(24 * time.Hour), RevokedAt: &revokedAt,
				CertPEM: leafPEM, ChainPEM: chainPEM},
			{ID: "v1", Name: "www", Serial: "01", Thumbprint: "AA", NotBefore: base, NotAfter: base.Add(90 * 24 * time.Hour),
				CertPEM: []byte("not PEM")},
		},
	}}
	h := api.New(api.Options{Backend: b, Auth: fakeAuth{}})

	rec := serve(t, h, request{method: "GET", path: "/api/certificates/www/versions", key: "reader"})
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("status %d, type %q, body %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var all []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &all); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, item := range all {
		got = append(got, map[string]any{"id": item["id"], "notAfter": item["notAfter"], "issuerChain": item["issuerChain"]})
	}
	want := []map[string]any{
		{"id": "v2", "notAfter": "2026-05-31T12:00:00+00:00", "issuerChain": []any{"Test Intermediate CA", "Test Root CA"}},
		// A certificate that cannot be parsed has no chain to show.
		{"id": "v1", "notAfter": "2026-05-30T12:00:00+00:00", "issuerChain": []any{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}

	notFound := map[string]any{"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5", "title": "Not Found"}
	for _, name := range []string{"nope", "bad_name"} {
		want := map[string]any{"detail": "The certificate '" + name + "' does not exist."}
		for k, v := range notFound {
			want[k] = v
		}
		wantProblem(t, serve(t, h, request{method: "GET", path: "/api/certificates/" + name + "/versions", key: "reader"}),
			http.StatusNotFound, want)
	}
	wantEmpty(t, serve(t, h, request{method: "GET", path: "/api/certificates/www/versions"}), http.StatusUnauthorized)
}

func TestOperationList(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	done := at.Add(2 * time.Second)
	ops := []operation.Operation{
		{ID: "00000000000000000000000000000002", Kind: operation.KindRenew, CertificateName: "www", Status: operation.StatusFailed,
			FailedStep: operation.StepValidating, Error: "CA said no", Attempt: 1, CreatedAt: at, UpdatedAt: done,
			Steps: []operation.StepRecord{{Name: operation.StepValidating, StartedAt: at, FinishedAt: &done, Error: "CA said no"}}},
	}
	tests := []struct {
		name       string
		query      string
		wantFilter api.OperationFilter
		wantErrors map[string][]string
	}{
		{name: "defaults", wantFilter: api.OperationFilter{Limit: api.DefaultOperationsLimit}},
		{name: "every parameter", query: "?certificate=www-example-test&status=running,Pending&status=running&limit=200",
			wantFilter: api.OperationFilter{CertificateName: "www-example-test",
				Statuses: []operation.Status{operation.StatusRunning, operation.StatusPending}, Limit: 200}},
		{name: "bad parameters", query: "?certificate=a.b&status=done&limit=201", wantErrors: map[string][]string{
			"Certificate": {"The field Certificate must match the regular expression '^[0-9a-zA-Z-]+$'."},
			"Status":      {"The Status must be pending, running, succeeded, or failed."},
			"Limit":       {"The Limit must be a whole number from 1 to 200."},
		}},
		{name: "limit not a number", query: "?limit=ten", wantErrors: map[string][]string{
			"Limit": {"The Limit must be a whole number from 1 to 200."},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &historyBackend{fakeBackend: &fakeBackend{}, ops: ops}
			h := api.New(api.Options{Backend: b, Auth: fakeAuth{}})
			rec := serve(t, h, request{method: "GET", path: "/api/operations" + tt.query, key: "reader"})
			if tt.wantErrors != nil {
				wantProblem(t, rec, http.StatusBadRequest, validationProblem(tt.wantErrors))
				if len(b.filters) != 0 {
					t.Errorf("the backend was asked %+v for a bad request", b.filters)
				}
				return
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			if diff := cmp.Diff([]api.OperationFilter{tt.wantFilter}, b.filters); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
			var got []map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			want := []map[string]any{{
				"id": ops[0].ID, "kind": "renew", "certificateName": "www", "status": "failed",
				"failedStep": "validating", "error": "CA said no", "attempt": float64(1),
				"createdAt": "2026-03-01T12:00:00Z", "updatedAt": "2026-03-01T12:00:02Z",
				"steps": []any{map[string]any{"name": "validating", "startedAt": "2026-03-01T12:00:00Z",
					"finishedAt": "2026-03-01T12:00:02Z", "durationMs": float64(2000), "error": "CA said no"}},
			}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("operations (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("empty list is []", func(t *testing.T) {
		t.Parallel()
		h := api.New(api.Options{Backend: &historyBackend{fakeBackend: &fakeBackend{}}, Auth: fakeAuth{}})
		rec := serve(t, h, request{method: "GET", path: "/api/operations", key: "reader"})
		if rec.Code != http.StatusOK || rec.Body.String() != "[]" {
			t.Errorf("status %d, body %q; want 200 []", rec.Code, rec.Body)
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		t.Parallel()
		h := api.New(api.Options{Backend: &historyBackend{fakeBackend: &fakeBackend{}}, Auth: fakeAuth{}})
		wantEmpty(t, serve(t, h, request{method: "GET", path: "/api/operations"}), http.StatusUnauthorized)
	})
}

// A Backend that cannot list versions or operations has no such routes.
func TestHistoryRoutesNeedListers(t *testing.T) {
	t.Parallel()
	h := newAPI(&fakeBackend{}, "")
	for _, path := range []string{"/api/operations"} {
		wantProblem(t, serve(t, h, request{method: "GET", path: path, key: "reader"}), http.StatusNotFound, map[string]any{
			"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5", "title": "Not Found",
			"detail": "There is no resource at " + path + ".",
		})
	}
}

func TestMe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want map[string]any
	}{
		{"reader", map[string]any{"name": "reader", "roles": []any{},
			"canIssue": false, "canRevoke": false, "canReadCertificate": false, "isAdmin": false}},
		{"issuer", map[string]any{"name": "issuer", "roles": []any{"Acmebot.IssueCertificate"},
			"canIssue": true, "canRevoke": false, "canReadCertificate": false, "isAdmin": false}},
		{"keyreader", map[string]any{"name": "keyreader", "roles": []any{"Certkeeper.ReadCertificate"},
			"canIssue": false, "canRevoke": false, "canReadCertificate": true, "isAdmin": false}},
		{"admin", map[string]any{"name": "admin", "roles": []any{"Certkeeper.Admin"},
			"canIssue": true, "canRevoke": true, "canReadCertificate": true, "isAdmin": true}},
		// Roles not required: issuing and revoking are implied, reading keys is not.
		{"open", map[string]any{"name": "open", "roles": []any{},
			"canIssue": true, "canRevoke": true, "canReadCertificate": false, "isAdmin": false}},
	}
	h := newAPI(&fakeBackend{}, "")
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, h, request{method: "GET", path: "/api/me", key: tt.key})
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GET /api/me (-want +got):\n%s", diff)
			}
		})
	}
	wantEmpty(t, serve(t, h, request{method: "GET", path: "/api/me"}), http.StatusUnauthorized)
}
