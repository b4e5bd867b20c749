package vault_test

import (
	"bytes"
	"testing"

	"github.com/certkeeper/certkeeper/internal/vault"
)

// FuzzParseCertificates feeds arbitrary bytes to ParseCertificates, which
// reads back every stored certificate and chain: it must not panic, and
// what it returns must encode and parse back to the same certificates. The
// seed corpus is in testdata/fuzz/FuzzParseCertificates.
func FuzzParseCertificates(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := vault.ParseCertificates(data)
		if err != nil {
			return
		}
		again, err := vault.ParseCertificates(vault.EncodeCertificates(certs))
		if err != nil {
			t.Fatalf("parsing the encoding of parsed certificates: %v", err)
		}
		if len(again) != len(certs) {
			t.Fatalf("round trip gave %d certificates, want %d", len(again), len(certs))
		}
		for i := range certs {
			if !bytes.Equal(again[i].Raw, certs[i].Raw) {
				t.Fatalf("certificate %d changed on the round trip", i)
			}
		}
	})
}
