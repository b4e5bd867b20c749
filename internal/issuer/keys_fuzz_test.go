package issuer

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// FuzzParseKeyPEM feeds arbitrary bytes to ParseKeyPEM, which reads back
// every stored private key: it must not panic, a key it returns must
// survive MarshalKeyPEM and ParseKeyPEM unchanged, and an error must never
// quote the input's key material. The seed corpus is in
// testdata/fuzz/FuzzParseKeyPEM.
func FuzzParseKeyPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\n\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseKeyPEM(data)
		if err != nil {
			if block, _ := pem.Decode(data); block != nil && len(block.Bytes) >= 8 {
				body := pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: block.Bytes})
				lines := strings.Split(string(body), "\n")
				if len(lines) > 1 && len(lines[1]) >= 12 && strings.Contains(err.Error(), lines[1]) {
					t.Fatalf("error quotes the key material: %v", err)
				}
			}
			return
		}
		out, err := MarshalKeyPEM(key)
		if err != nil {
			t.Fatalf("MarshalKeyPEM of a parsed key: %v", err)
		}
		again, err := ParseKeyPEM(out)
		if err != nil {
			t.Fatalf("ParseKeyPEM of MarshalKeyPEM's output: %v", err)
		}
		a, _ := x509.MarshalPKIXPublicKey(key.Public())
		b, _ := x509.MarshalPKIXPublicKey(again.Public())
		if string(a) != string(b) {
			t.Fatal("the key changed on the round trip")
		}
	})
}
