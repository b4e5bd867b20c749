package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-acme/lego/v5/acme"
	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/operation"
)

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		keyType string
		size    int
		curve   string
		want    string // "RSA-<bits>" or curve name; empty means an error
	}{
		{keyType: "RSA", size: 2048, want: "RSA-2048"},
		{keyType: "rsa", size: 3072, want: "RSA-3072"},
		{keyType: "RSA", size: 4096, want: "RSA-4096"},
		{keyType: "RSA", size: 0, want: "RSA-2048"},
		{keyType: "RSA", size: 1024},
		{keyType: "EC", curve: "P-256", want: "P-256"},
		{keyType: "EC", curve: "P-384", want: "P-384"},
		{keyType: "EC", curve: "P-521", want: "P-521"},
		{keyType: "EC", curve: "", want: "P-256"},
		{keyType: "EC", curve: "P-224"},
		{keyType: "Ed25519"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s-%d-%s", tc.keyType, tc.size, tc.curve), func(t *testing.T) {
			t.Parallel()
			key, err := GenerateKey(tc.keyType, tc.size, tc.curve)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("GenerateKey(%q, %d, %q) succeeded, want error", tc.keyType, tc.size, tc.curve)
				}
				return
			}
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if got := describeKey(key); got != tc.want {
				t.Errorf("key = %s, want %s", got, tc.want)
			}

			// PKCS#8 round trip.
			pemBytes, err := MarshalKeyPEM(key)
			if err != nil {
				t.Fatalf("MarshalKeyPEM: %v", err)
			}
			if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----") {
				t.Errorf("MarshalKeyPEM wrote %q, want a PKCS#8 block", strings.SplitN(string(pemBytes), "\n", 2)[0])
			}
			back, err := ParseKeyPEM(pemBytes)
			if err != nil {
				t.Fatalf("ParseKeyPEM: %v", err)
			}
			if !back.(interface{ Equal(crypto.PrivateKey) bool }).Equal(key) {
				t.Error("key changed in a PKCS#8 round trip")
			}
		})
	}
}

func describeKey(k crypto.Signer) string {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PrivateKey:
		return k.Curve.Params().Name
	}
	return "unknown"
}

func TestParseKeyPEMLegacyFormats(t *testing.T) {
	t.Parallel()
	rsaKey, err := GenerateKey("RSA", 2048, "")
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := GenerateKey("EC", 0, "P-384")
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		block *pem.Block
		want  crypto.Signer
	}{
		{name: "PKCS#1 RSA", block: &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey.(*rsa.PrivateKey))}, want: rsaKey},
		{name: "SEC 1 EC", block: &pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}, want: ecKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKeyPEM(pem.EncodeToMemory(tc.block))
			if err != nil {
				t.Fatalf("ParseKeyPEM: %v", err)
			}
			if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(tc.want) {
				t.Error("parsed key differs")
			}
		})
	}
}

func TestParseKeyPEMErrors(t *testing.T) {
	t.Parallel()
	secret := "c2VjcmV0LWtleS1tYXRlcmlhbA=="
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "not PEM", in: "hello", want: "no PEM block"},
		{name: "certificate block", in: "-----BEGIN CERTIFICATE-----\n" + secret + "\n-----END CERTIFICATE-----\n", want: "unexpected PEM block type"},
		{name: "corrupt PKCS#8", in: "-----BEGIN PRIVATE KEY-----\n" + secret + "\n-----END PRIVATE KEY-----\n", want: "parsing private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseKeyPEM([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseKeyPEM = %v, want error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the key material", err)
			}
		})
	}
}

func TestNewCSR(t *testing.T) {
	t.Parallel()
	key, err := GenerateKey("EC", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"www.example.com", "*.example.com", "example.com"}
	der, err := newCSR(names, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Errorf("CSR signature: %v", err)
	}
	if csr.Subject.CommonName != names[0] {
		t.Errorf("CN = %q, want %q", csr.Subject.CommonName, names[0])
	}
	if diff := cmp.Diff(names, csr.DNSNames); diff != "" {
		t.Errorf("SANs (-want +got):\n%s", diff)
	}
	if !csr.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) || csr.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Error("CSR is not for the key")
	}
}

func TestAccountMissing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "accountDoesNotExist", err: &acme.ProblemDetails{Type: acme.AccountDoesNotExistErrorType, Detail: "Account x not found."}, want: true},
		{name: "wrapped", err: errors.Join(errors.New("x"), &acme.ProblemDetails{Type: acme.AccountDoesNotExistErrorType}), want: true},
		{name: "unauthorized no account", err: &acme.ProblemDetails{Type: acme.UnauthorizedErrorType, Detail: "No account found corresponding to public key authenticating this request"}, want: true},
		{name: "unauthorized deactivated", err: &acme.ProblemDetails{Type: acme.UnauthorizedErrorType, Detail: "Account has been deactivated"}, want: true},
		{name: "unauthorized challenge", err: &acme.ProblemDetails{Type: acme.UnauthorizedErrorType, Detail: "Correct value not found for DNS challenge"}, want: false},
		{name: "bad nonce", err: &acme.NonceError{ProblemDetails: &acme.ProblemDetails{Type: acme.BadNonceErrorType}}, want: false},
		{name: "plain error", err: errors.New("account does not exist"), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := accountMissing(tc.err); got != tc.want {
				t.Errorf("accountMissing(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestProblemErrorText(t *testing.T) {
	t.Parallel()
	pd := &acme.ProblemDetails{
		Type:   acme.RejectedIdentifierErrorType,
		Detail: "Error creating new order",
		SubProblems: []acme.SubProblem{{
			Type: acme.RejectedIdentifierErrorType, Detail: "forbidden by policy",
			Identifier: acme.Identifier{Type: "dns", Value: "x.test"},
		}},
	}
	err := fail(operation.StepOrdering, "creating order", pd)
	want := "creating order: CA answered urn:ietf:params:acme:error:rejectedIdentifier: Error creating new order; x.test: forbidden by policy (urn:ietf:params:acme:error:rejectedIdentifier)"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
	if !errors.Is(err, pd) {
		t.Error("ProblemError does not unwrap to the problem document")
	}
	plain := fail(operation.StepPresenting, "presenting DNS records", errors.New("zone not found"))
	if got := plain.Error(); got != "presenting DNS records: zone not found" || plain.Type != "" {
		t.Errorf("Error() = %q, type %q", got, plain.Type)
	}
}
