package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAPI runs the Acmebot-compatible API of one certkeeper process per
// database, with roles required, against Pebble and BIND. Its subtests share
// that stack and run in parallel; each uses names of its own.
func TestAPI(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db string) {
		s := startStack(t, db, stackOptions{
			RequireRoles: true,
			// A CNAME at the challenge name makes BIND ignore the TXT
			// update, so that issuance fails after records were presented.
			ExtraRecords: []string{"_acme-challenge.cname." + zone + ". 60 IN CNAME _acme-challenge.nowhere.invalid."},
		})
		t.Run("issue renew revoke", func(t *testing.T) { t.Parallel(); testLifecycle(t, s) })
		t.Run("issue EC P-384", func(t *testing.T) { t.Parallel(); testIssueEC(t, s) })
		t.Run("validation", func(t *testing.T) { t.Parallel(); testValidation(t, s) })
		t.Run("authentication", func(t *testing.T) { t.Parallel(); testAuthentication(t, s) })
		t.Run("unknown operation", func(t *testing.T) { t.Parallel(); testUnknownOperation(t, s) })
		t.Run("unknown certificate", func(t *testing.T) { t.Parallel(); testUnknownCertificate(t, s) })
		t.Run("name outside every zone", func(t *testing.T) { t.Parallel(); testOutsideZones(t, s) })
		t.Run("name the CA refuses", func(t *testing.T) { t.Parallel(); testBlockedName(t, s) })
		t.Run("records removed after failure", func(t *testing.T) { t.Parallel(); testCleanupAfterFailure(t, s) })
	})
}

// testCtx is the deadline of one subtest's waits.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testLifecycle(t *testing.T, s *stack) {
	ctx := testCtx(t)
	names := []string{zone, "*." + zone}
	const name = "example-test"

	start := time.Now()
	loc := s.issue(ctx, t, map[string]any{"dnsNames": names, "certificateName": name})
	s.waitSucceeded(ctx, t, loc)
	t.Logf("%s: one issuance (apex + wildcard, RSA 2048), POST to 200: %v", s.db, time.Since(start))

	s.assertNoChallengeRecords(ctx, t, names...)
	first := s.certificate(ctx, t, name)
	checkItem(t, first, names, "RSA", 2048, "")
	checkIssued(ctx, t, s, first, names)
	if got := pebbleStatus(ctx, t, s, first.SerialNumber); got != "Valid" {
		t.Errorf("Pebble status of the new certificate = %q, want Valid", got)
	}

	checkDownload(ctx, t, s, first, name)

	// Polling a finished operation keeps answering 200.
	if r := s.srv.do(ctx, t, http.MethodGet, loc, s.readerKey, nil); r.Status != http.StatusOK {
		t.Errorf("GET %s after success with the reader key: %s, want 200", loc, r)
	}

	t.Run("renew", func(t *testing.T) {
		loc := s.srv.accepted(t, s.srv.do(ctx, t, http.MethodPost, "/api/certificate/"+name+"/renew", s.issuerKey, nil))
		s.waitSucceeded(ctx, t, loc)
		s.assertNoChallengeRecords(ctx, t, names...)
		second := s.certificate(ctx, t, name)
		checkItem(t, second, names, "RSA", 2048, "")
		checkIssued(ctx, t, s, second, names)
		if second.ID == first.ID {
			t.Errorf("renewed item id = %q, the same as before renewal", second.ID)
		}
		if second.X509Thumbprint == first.X509Thumbprint {
			t.Errorf("renewed thumbprint = %s, the same as before renewal", second.X509Thumbprint)
		}
		if second.SerialNumber == first.SerialNumber {
			t.Errorf("renewed serial = %s, the same as before renewal", second.SerialNumber)
		}
		if got := pebbleStatus(ctx, t, s, first.SerialNumber); got != "Valid" {
			t.Errorf("Pebble status of the previous version = %q, want Valid (renewal does not revoke)", got)
		}
		first = second
	})

	t.Run("revoke", func(t *testing.T) {
		r := s.srv.do(ctx, t, http.MethodPost, "/api/certificate/"+name+"/revoke", s.issuerKey, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("revoke: %s, want 200", r)
		}
		if got := pebbleStatus(ctx, t, s, first.SerialNumber); got != "Revoked" {
			t.Errorf("Pebble status after revoke = %q, want Revoked", got)
		}
	})
}

func testIssueEC(t *testing.T, s *stack) {
	ctx := testCtx(t)
	names := []string{"ec." + zone, "www.ec." + zone}
	loc := s.issue(ctx, t, map[string]any{"dnsNames": names, "keyType": "EC", "keyCurveName": "P-384"})
	s.waitSucceeded(ctx, t, loc)
	s.assertNoChallengeRecords(ctx, t, names...)
	// The name is derived from the first DNS name.
	item := s.certificate(ctx, t, "ec-example-test")
	checkItem(t, item, names, "EC", 0, "P-384")
	checkIssued(ctx, t, s, item, names)
}

// checkItem compares a list item with what was requested.
func checkItem(t *testing.T, it certItem, names []string, keyType string, keySize int, curve string) {
	t.Helper()
	if diff := cmp.Diff(names, it.DNSNames); diff != "" {
		t.Errorf("dnsNames (-want +got):\n%s", diff)
	}
	if it.KeyType != keyType {
		t.Errorf("keyType = %q, want %q", it.KeyType, keyType)
	}
	if keySize != 0 && (it.KeySize == nil || *it.KeySize != keySize) {
		t.Errorf("keySize = %v, want %d", deref(it.KeySize), keySize)
	}
	if curve != "" && (it.KeyCurveName == nil || *it.KeyCurveName != curve) {
		t.Errorf("keyCurveName = %v, want %q", deref(it.KeyCurveName), curve)
	}
	if it.DNSProviderName != "BIND" {
		t.Errorf("dnsProviderName = %q, want BIND", it.DNSProviderName)
	}
	if !it.ExpiresOn.After(time.Now()) || it.IsExpired {
		t.Errorf("expiresOn = %v, isExpired = %v: want a future expiry", it.ExpiresOn, it.IsExpired)
	}
	if !it.IsIssuedByAcmebot || !it.IsSameEndpoint {
		t.Errorf("isIssuedByAcmebot = %v, isSameEndpoint = %v, want both true", it.IsIssuedByAcmebot, it.IsSameEndpoint)
	}
	if !operationID.MatchString(it.ID) {
		t.Errorf("id = %q, want 32 lowercase hex characters", it.ID)
	}
	if it.SerialNumber == "" {
		t.Fatalf("item %q has no serialNumber; the tests need it to find the certificate at the CA", it.Name)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// checkIssued fetches the certificate with the item's serial from Pebble's
// management API and checks that the item describes it: SHA-1 thumbprint,
// names (CN first, SANs in order), key, expiry, and a chain that verifies
// to Pebble's root.
func checkIssued(ctx context.Context, t *testing.T, s *stack, it certItem, names []string) {
	t.Helper()
	cert := pebbleCert(ctx, t, s, it.SerialNumber)
	sum := sha1.Sum(cert.Raw)
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); it.X509Thumbprint != want {
		t.Errorf("x509Thumbprint = %s, want the SHA-1 of the issued certificate %s", it.X509Thumbprint, want)
	}
	if cert.Subject.CommonName != names[0] {
		t.Errorf("subject CN = %q, want %q", cert.Subject.CommonName, names[0])
	}
	if diff := cmp.Diff(names, cert.DNSNames); diff != "" {
		t.Errorf("certificate SANs (-want +got):\n%s", diff)
	}
	if !cert.NotAfter.Equal(it.ExpiresOn.Truncate(time.Second)) && !cert.NotAfter.Equal(it.ExpiresOn) {
		t.Errorf("expiresOn = %v, certificate NotAfter = %v", it.ExpiresOn, cert.NotAfter)
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if it.KeyType != "RSA" || it.KeySize == nil || pub.N.BitLen() != *it.KeySize {
			t.Errorf("certificate key is RSA %d, item says %s %v", pub.N.BitLen(), it.KeyType, deref(it.KeySize))
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		if it.KeyType != "EC" || it.KeyCurveName == nil || want[*it.KeyCurveName] != pub.Curve {
			t.Errorf("certificate key is EC %s, item says %s %v", pub.Curve.Params().Name, it.KeyType, deref(it.KeyCurveName))
		}
	default:
		t.Errorf("certificate key is %T", cert.PublicKey)
	}

	roots := x509.NewCertPool()
	rootPEM, err := s.pebble.IssuerRoots(ctx)
	if err != nil {
		t.Fatalf("getting Pebble's roots: %v", err)
	}
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("Pebble's roots hold no certificate: %s", rootPEM)
	}
	inter := x509.NewCertPool()
	if !inter.AppendCertsFromPEM(pebbleGet(ctx, t, s, "/intermediates/0")) {
		t.Fatalf("Pebble's intermediate holds no certificate")
	}
	for _, n := range names {
		host := strings.Replace(n, "*", "anything", 1)
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("verifying the certificate for %s: %v", host, err)
		}
	}
}

// pebbleCert returns the certificate Pebble issued with the hex serial.
func pebbleCert(ctx context.Context, t *testing.T, s *stack, serial string) *x509.Certificate {
	t.Helper()
	var status struct{ Status, Certificate string }
	if err := json.Unmarshal(pebbleGet(ctx, t, s, "/cert-status-by-serial/"+url.PathEscape(serial)), &status); err != nil {
		t.Fatalf("decoding Pebble's certificate status: %v", err)
	}
	block, _ := pem.Decode([]byte(status.Certificate))
	if block == nil {
		t.Fatalf("Pebble's certificate %s is not PEM: %q", serial, status.Certificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing Pebble's certificate %s: %v", serial, err)
	}
	return cert
}

func pebbleStatus(ctx context.Context, t *testing.T, s *stack, serial string) string {
	t.Helper()
	got, err := s.pebble.CertStatus(ctx, serial)
	if err != nil {
		t.Fatalf("asking Pebble about serial %s: %v", serial, err)
	}
	return got
}

// pebbleGet GETs a path of Pebble's management interface and returns the
// body of a 200.
func pebbleGet(ctx context.Context, t *testing.T, s *stack, path string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.pebble.ManagementURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.pebble.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("GET Pebble %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading Pebble %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET Pebble %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

func testOutsideZones(t *testing.T, s *stack) {
	ctx := testCtx(t)
	const outside = "www.nowhere.invalid"
	r := s.srv.postJSON(ctx, t, "/api/certificate", s.issuerKey, map[string]any{"dnsNames": []string{outside}})
	switch r.Status {
	case http.StatusBadRequest:
		p := decodeProblem(t, r)
		if !strings.Contains(fmt.Sprint(p.Errors), outside) && !strings.Contains(p.Detail, outside) {
			t.Errorf("400 problem does not name %s: %s", outside, r.Body)
		}
	case http.StatusAccepted:
		loc := s.srv.accepted(t, r)
		done := s.srv.wait(ctx, t, loc, s.issuerKey)
		if done.Status != http.StatusInternalServerError {
			t.Fatalf("operation for %s ended with %s, want 500", outside, done)
		}
		if p := decodeProblem(t, done); !strings.Contains(p.Detail, outside) {
			t.Errorf("detail %q does not name %s", p.Detail, outside)
		}
	default:
		t.Fatalf("issuing %s: %s, want 400 or 202", outside, r)
	}
}

func testBlockedName(t *testing.T, s *stack) {
	ctx := testCtx(t)
	names := []string{"www." + refusedZone}
	loc := s.issue(ctx, t, map[string]any{"dnsNames": names})
	r := s.srv.wait(ctx, t, loc, s.issuerKey)
	if r.Status != http.StatusInternalServerError {
		t.Fatalf("operation for a blocked name ended with %s, want 500", r)
	}
	p := decodeProblem(t, r)
	// Pebble's own words for a name under its domainBlocklist.
	const pebbleWords = "issuance is forbidden by policy"
	if !strings.Contains(p.Detail, pebbleWords) || !strings.Contains(p.Detail, names[0]) {
		t.Errorf("detail = %q, want Pebble's message (%q) naming %s", p.Detail, pebbleWords, names[0])
	}
	s.assertNoChallengeRecords(ctx, t, names...)
}

// testCleanupAfterFailure issues for two names, one of which cannot get its
// TXT record (a CNAME sits at its challenge name, so BIND ignores the
// update): the order fails after the other name's record was presented, and
// that record must be gone afterwards.
func testCleanupAfterFailure(t *testing.T, s *stack) {
	ctx := testCtx(t)
	names := []string{"partial." + zone, "cname." + zone}
	loc := s.issue(ctx, t, map[string]any{"dnsNames": names})
	seen := false
	var r response
	for {
		r = s.srv.do(ctx, t, http.MethodGet, loc, s.issuerKey, nil)
		if r.Status != http.StatusAccepted {
			break
		}
		if len(s.challengeOwners(ctx, t, names[0])) > 0 {
			seen = true
		}
		select {
		case <-ctx.Done():
			t.Fatalf("operation %s still running: %v", loc, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if r.Status != http.StatusInternalServerError {
		t.Fatalf("operation ended with %s, want 500", r)
	}
	p := decodeProblem(t, r)
	if p.Detail == "" {
		t.Errorf("failed operation has no detail: %s", r.Body)
	}
	t.Logf("detail: %s (record of %s seen while running: %v)", p.Detail, names[0], seen)
	s.assertNoChallengeRecords(ctx, t, names...)
}

// checkDownload downloads the newest version as PEM and checks that the
// served leaf is the listed one (SHA-1 thumbprint), that the private key
// belongs to it, and that the served chain leads to Pebble's root.
func checkDownload(ctx context.Context, t *testing.T, s *stack, it certItem, name string) {
	t.Helper()
	path := "/api/certificates/" + name + "/download"
	if r := s.srv.do(ctx, t, http.MethodGet, path, s.readerKey, nil); r.Status != http.StatusForbidden {
		t.Errorf("GET %s without Certkeeper.ReadCertificate: %d, want 403", path, r.Status)
	}
	r := s.srv.do(ctx, t, http.MethodGet, path, s.keyReaderKey, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %s", path, r)
	}
	var key any
	var certs []*x509.Certificate
	for rest := r.Body; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				t.Fatalf("parsing the downloaded private key: %v", err)
			}
			key = k
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatalf("parsing a downloaded certificate: %v", err)
			}
			certs = append(certs, c)
		}
	}
	if key == nil || len(certs) < 2 {
		t.Fatalf("download holds key %T and %d certificates, want a key, the leaf and its issuer", key, len(certs))
	}
	sum := sha1.Sum(certs[0].Raw)
	if got := strings.ToUpper(hex.EncodeToString(sum[:])); got != it.X509Thumbprint {
		t.Errorf("downloaded leaf SHA-1 = %s, listed x509Thumbprint %s", got, it.X509Thumbprint)
	}
	pub, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		t.Fatalf("downloaded key %T has no public key", key)
	}
	if eq, ok := pub.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(certs[0].PublicKey) {
		t.Errorf("downloaded private key does not belong to the downloaded certificate")
	}
	rootPEM, err := s.pebble.IssuerRoots(ctx)
	if err != nil {
		t.Fatalf("getting Pebble's roots: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: certs[0].DNSNames[0], Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("verifying the downloaded chain: %v", err)
	}
}
