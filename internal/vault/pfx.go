package vault

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certkeeper/certkeeper/internal/issuer"
)

// PFX encodes v — private key, leaf and chain — as PKCS#12 protected by
// password, with modern encryption (AES-256-CBC, PBKDF2 with SHA-256).
func (v Version) PFX(password string) ([]byte, error) {
	key, err := issuer.ParseKeyPEM(v.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("reading the private key of %s: %w", v.Name, err)
	}
	certs, err := ParseCertificates(append(append([]byte{}, v.CertPEM...), v.ChainPEM...))
	if err != nil {
		return nil, fmt.Errorf("reading the certificates of %s: %w", v.Name, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("encoding %s as PFX: no certificate", v.Name)
	}
	pfx, err := pkcs12.Modern2023.Encode(key, certs[0], certs[1:], password)
	if err != nil {
		return nil, fmt.Errorf("encoding %s as PFX: %w", v.Name, err)
	}
	return pfx, nil
}

// Leaf returns v's parsed leaf certificate.
func (v Version) Leaf() (*x509.Certificate, error) {
	certs, err := ParseCertificates(v.CertPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs[0], nil
}

// ParseCertificates returns every CERTIFICATE block of PEM data, in order,
// skipping other blocks.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		out = append(out, c)
	}
}

// EncodeCertificates returns certs as PEM, in order.
func EncodeCertificates(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
