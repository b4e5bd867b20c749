package api_test

import (
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
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

func TestOperations(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(1500 * time.Millisecond)
	running := operation.Operation{ID: "00000000000000000000000000000001", Kind: operation.KindIssue, CertificateName: "www",
		Status: operation.StatusRunning, Attempt: 1, CreatedAt: start, UpdatedAt: end,
		Steps: []operation.StepRecord{{Name: operation.StepOrdering, StartedAt: start, FinishedAt: &end},
			{Name: operation.StepPresenting, StartedAt: end}}}
	failed := running
	failed.ID, failed.Status, failed.FailedStep, failed.Error = "00000000000000000000000000000002", operation.StatusFailed,
		operation.StepPresenting, "server answered REFUSED"
	failed.Steps = []operation.StepRecord{running.Steps[0], {Name: operation.StepPresenting, StartedAt: end, FinishedAt: &end,
		Error: "server answered REFUSED"}}
	ops := map[string]operation.Operation{running.ID: running, failed.ID: failed}
	h := newAPI(&fakeBackend{ops: ops}, "")

	rec := serve(t, h, request{method: "GET", path: "/api/operations/" + running.ID, key: "reader"})
	if rec.Code != http.StatusAccepted {
		t.Fatalf("running: status %d, body %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Location"); got != "http://certkeeper.test/api/operations/"+running.ID {
		t.Errorf("Location = %q", got)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": running.ID, "kind": "issue", "certificateName": "www", "status": "running",
		"currentStep": "presenting DNS records", "attempt": float64(1),
		"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:01.5Z",
		"steps": []any{
			map[string]any{"name": "ordering", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01.5Z", "durationMs": float64(1500)},
			map[string]any{"name": "presenting DNS records", "startedAt": "2026-01-01T00:00:01.5Z"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("running operation (-want +got):\n%s", diff)
	}

	rec = serve(t, h, request{method: "GET", path: "/api/operations/" + failed.ID, key: "reader"})
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("failed: status %d", rec.Code)
	}
	var prob struct {
		Detail    string         `json:"detail"`
		Operation map[string]any `json:"operation"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil {
		t.Fatal(err)
	}
	if prob.Detail != "presenting DNS records: server answered REFUSED" || prob.Operation["failedStep"] != "presenting DNS records" {
		t.Errorf("failed operation problem = %s", rec.Body)
	}
	if rec := serve(t, h, request{method: "GET", path: "/api/operations/" + running.ID}); rec.Code != http.StatusUnauthorized {
		t.Errorf("without a key: %d, want 401", rec.Code)
	}
	if rec := serve(t, h, request{method: "GET", path: "/api/operations/00000000000000000000000000000009", key: "reader"}); rec.Code != http.StatusBadRequest {
		t.Errorf("unknown id: %d, want 400", rec.Code)
	}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "www.example.test"},
		DNSNames: []string{"www.example.test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b := &fakeBackend{versions: []vault.Version{{ID: "v1", Name: "www", CertPEM: certPEM, KeyPEM: keyPEM}}}
	h := newAPI(b, "")

	for _, key := range []string{"reader", "issuer", "revoker", "open"} {
		if rec := serve(t, h, request{method: "GET", path: "/api/certificates/www/download", key: key}); rec.Code != http.StatusForbidden {
			t.Errorf("key %s: status %d, want 403: the issuing roles never read private keys", key, rec.Code)
		}
	}
	for _, key := range []string{"keyreader", "admin"} {
		rec := serve(t, h, request{method: "GET", path: "/api/certificates/www/download", key: key})
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-pem-file" {
			t.Fatalf("key %s: status %d, type %q", key, rec.Code, rec.Header().Get("Content-Type"))
		}
		if want := string(keyPEM) + string(certPEM); rec.Body.String() != want {
			t.Errorf("PEM body = %q, want key then certificate", rec.Body)
		}
	}
	rec := serve(t, h, request{method: "GET", path: "/api/certificates/www/download?format=pfx", key: "keyreader"})
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-pkcs12" {
		t.Fatalf("pfx: status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	password := rec.Header().Get("X-Pfx-Password")
	gotKey, gotCert, _, err := pkcs12.DecodeChain(rec.Body.Bytes(), password)
	if err != nil {
		t.Fatalf("decoding PFX with the one-time password: %v", err)
	}
	if !gotKey.(*ecdsa.PrivateKey).Equal(key) || gotCert.SerialNumber.Int64() != 7 {
		t.Errorf("PFX holds another key or certificate")
	}
	if _, _, _, err := pkcs12.DecodeChain(rec.Body.Bytes(), "wrong"); err == nil {
		t.Error("PFX opens with a wrong password")
	}
	wantProblem(t, serve(t, h, request{method: "GET", path: "/api/certificates/nope/download", key: "keyreader"}),
		http.StatusNotFound, map[string]any{"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5", "title": "Not Found",
			"detail": "The certificate 'nope' does not exist."})
	wantProblem(t, serve(t, h, request{method: "GET", path: "/api/certificates/www/download?format=zip", key: "keyreader"}),
		http.StatusBadRequest, validationProblem(map[string][]string{"Format": {"The Format must be pem or pfx."}}))
}
