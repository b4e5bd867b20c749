// Package vaulttest holds the conformance suite every certificate
// destination passes (the built-in store, files, HashiCorp Vault/OpenBao KV
// v2, Azure Key Vault), and helpers that make real certificate versions for
// tests.
package vaulttest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the thumbprint is an identifier, as Acmebot shows it
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// Options describe what a destination can do beyond the contract's minimum.
type Options struct {
	// KeepsID is true when Current returns the version id delivered.
	KeepsID bool
	// OrderedWrites is true when two concurrent deliveries of different
	// versions always leave the newer one current (check-and-set writes, a
	// lock). Without it, the suite checks only that the result is one whole
	// version.
	OrderedWrites bool
}

// Run runs the conformance suite against the destination newDest returns.
// Each subtest calls newDest once and uses certificate names of its own.
func Run(t *testing.T, newDest func(t *testing.T) vault.Destination, opts Options) {
	t.Helper()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)

	t.Run("missing is ErrNotFound", func(t *testing.T) {
		d := newDest(t)
		if _, err := d.Current(t.Context(), "nothing-here"); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("Current(nothing-here) = %v, want ErrNotFound", err)
		}
	})

	t.Run("deliver, again, newer, older", func(t *testing.T) {
		d := newDest(t)
		ctx := t.Context()
		v1 := NewVersion(t, "conf-www", base)
		v2 := NewVersion(t, "conf-www", base.Add(time.Minute))

		r, err := d.Deliver(ctx, v1)
		if err != nil {
			t.Fatalf("Deliver(v1): %v", err)
		}
		if !r.Changed {
			t.Errorf("Deliver(v1) into nothing: Changed = false, want true")
		}
		Equal(t, opts, mustCurrent(t, d, "conf-www"), v1)

		r, err = d.Deliver(ctx, v1)
		if err != nil {
			t.Fatalf("Deliver(v1) again: %v", err)
		}
		if r.Changed {
			t.Errorf("Deliver(v1) again: Changed = true, want false")
		}
		Equal(t, opts, mustCurrent(t, d, "conf-www"), v1)

		if r, err = d.Deliver(ctx, v2); err != nil {
			t.Fatalf("Deliver(v2): %v", err)
		}
		if !r.Changed {
			t.Errorf("Deliver(v2) over v1: Changed = false, want true")
		}
		Equal(t, opts, mustCurrent(t, d, "conf-www"), v2)

		if _, err := d.Deliver(ctx, v1); !errors.Is(err, vault.ErrSuperseded) {
			t.Errorf("Deliver(v1) over the newer v2 = %v, want ErrSuperseded", err)
		}
		Equal(t, opts, mustCurrent(t, d, "conf-www"), v2)
	})

	t.Run("names are independent", func(t *testing.T) {
		d := newDest(t)
		a := NewVersion(t, "conf-a", base)
		b := NewVersion(t, "conf-b", base)
		for _, v := range []vault.Version{a, b} {
			if _, err := d.Deliver(t.Context(), v); err != nil {
				t.Fatalf("Deliver(%s): %v", v.Name, err)
			}
		}
		Equal(t, opts, mustCurrent(t, d, "conf-a"), a)
		Equal(t, opts, mustCurrent(t, d, "conf-b"), b)
	})

	t.Run("concurrent deliveries leave one whole version", func(t *testing.T) {
		d := newDest(t)
		ctx := t.Context()
		old := NewVersion(t, "conf-race", base)
		if _, err := d.Deliver(ctx, old); err != nil {
			t.Fatalf("Deliver(old): %v", err)
		}
		versions := []vault.Version{
			NewVersion(t, "conf-race", base.Add(time.Minute)),
			NewVersion(t, "conf-race", base.Add(2*time.Minute)),
		}
		var wg sync.WaitGroup
		errs := make([]error, len(versions))
		for i, v := range versions {
			wg.Go(func() {
				for range 3 { // a destination may report a lost race as an error to retry
					if _, errs[i] = d.Deliver(ctx, v); errs[i] == nil || errors.Is(errs[i], vault.ErrSuperseded) {
						return
					}
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil && !errors.Is(err, vault.ErrSuperseded) {
				t.Errorf("Deliver(version %d): %v", i, err)
			}
		}
		got := mustCurrent(t, d, "conf-race")
		if opts.OrderedWrites {
			Equal(t, opts, got, versions[1])
			return
		}
		for _, v := range versions {
			if bytes.Equal(got.CertPEM, v.CertPEM) {
				Equal(t, opts, got, v)
				return
			}
		}
		t.Errorf("after concurrent deliveries the destination holds neither version: %q", got.CertPEM)
	})
}

func mustCurrent(t *testing.T, d vault.Destination, name string) vault.Version {
	t.Helper()
	v, err := d.Current(t.Context(), name)
	if err != nil {
		t.Fatalf("Current(%s): %v", name, err)
	}
	return v
}

// Equal reports, as test errors, every way got differs from want in what a
// destination keeps: the leaf, the chain, the private key (compared as the
// key, not its encoding), and the id when opts.KeepsID.
func Equal(t *testing.T, opts Options, got, want vault.Version) {
	t.Helper()
	if !bytes.Equal(normalize(got.CertPEM), normalize(want.CertPEM)) {
		t.Errorf("%s: certificate differs:\ngot  %q\nwant %q", want.Name, got.CertPEM, want.CertPEM)
	}
	if !bytes.Equal(normalize(got.ChainPEM), normalize(want.ChainPEM)) {
		t.Errorf("%s: chain differs:\ngot  %q\nwant %q", want.Name, got.ChainPEM, want.ChainPEM)
	}
	if !sameKey(got.KeyPEM, want.KeyPEM) {
		t.Errorf("%s: private key differs from the one delivered", want.Name)
	}
	if opts.KeepsID && got.ID != want.ID {
		t.Errorf("%s: version id = %q, want %q", want.Name, got.ID, want.ID)
	}
}

// normalize re-encodes every PEM block so that line endings and headers do
// not count.
func normalize(data []byte) []byte {
	var out bytes.Buffer
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out.Bytes()
		}
		_ = pem.Encode(&out, &pem.Block{Type: b.Type, Bytes: b.Bytes})
	}
}

func sameKey(a, b []byte) bool {
	ka, kb := parseKey(a), parseKey(b)
	if ka == nil || kb == nil {
		return false
	}
	type equaler interface {
		Equal(x crypto.PrivateKey) bool
	}
	e, ok := ka.(equaler)
	return ok && e.Equal(kb)
}

func parseKey(data []byte) any {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		return k
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k
	}
	return nil
}

var (
	caOnce sync.Once
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
)

// NewVersion returns a real certificate version for name: a fresh P-256
// key, a leaf for <name>.example.test valid from notBefore for 90 days,
// signed by a test CA that is the chain. Its id is new and CreatedAt is
// notBefore.
func NewVersion(t testing.TB, name string, notBefore time.Time) vault.Version {
	t.Helper()
	caOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certkeeper vaulttest CA"},
			NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
			SubjectKeyId: []byte{1, 2, 3, 4},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			panic(err)
		}
		caCert, _ = x509.ParseCertificate(der)
		caKey = k
		caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewVersionWithKey(t, name, notBefore, key)
}

// NewVersionWithKey is NewVersion with the given private key (RSA or EC);
// the spec's key settings follow it.
func NewVersionWithKey(t testing.TB, name string, notBefore time.Time, key crypto.Signer) vault.Version {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	dnsName := strings.ToLower(name) + ".example.test"
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: notBefore.UTC(), NotAfter: notBefore.Add(90 * 24 * time.Hour).UTC(),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	sum := sha1.Sum(der) //nolint:gosec // see import
	spec := certificate.Spec{Name: name, DNSNames: []string{dnsName}, KeyType: certificate.KeyTypeEC,
		KeyCurveName: "P-256", DNSProviderName: "Test DNS"}
	if k, ok := key.(*rsa.PrivateKey); ok {
		spec.KeyType, spec.KeyCurveName, spec.KeySize = certificate.KeyTypeRSA, "", k.Size()*8
	}
	return vault.Version{
		ID:           operation.NewID(),
		Name:         name,
		Spec:         spec,
		ACMEEndpoint: "https://acme.example.test/directory",
		Serial:       leaf.SerialNumber.Text(16),
		Thumbprint:   strings.ToUpper(hex.EncodeToString(sum[:])),
		NotBefore:    leaf.NotBefore, NotAfter: leaf.NotAfter,
		CertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		ChainPEM:  append([]byte{}, caPEM...),
		KeyPEM:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		CertURL:   "https://acme.example.test/cert/" + leaf.SerialNumber.Text(16),
		CreatedAt: notBefore.UTC(),
	}
}
