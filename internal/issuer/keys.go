package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// GenerateKey returns a new private key: keyType "RSA" with keySize 2048,
// 3072 or 4096 (0 means 2048), or "EC" with curve "P-256", "P-384" or
// "P-521" (empty means P-256). keyType and curve are case-insensitive.
func GenerateKey(keyType string, keySize int, curve string) (crypto.Signer, error) {
	switch strings.ToUpper(keyType) {
	case "RSA":
		if keySize == 0 {
			keySize = 2048
		}
		switch keySize {
		case 2048, 3072, 4096:
		default:
			return nil, fmt.Errorf("generating RSA key: unsupported size %d (want 2048, 3072 or 4096)", keySize)
		}
		k, err := rsa.GenerateKey(rand.Reader, keySize)
		if err != nil {
			return nil, fmt.Errorf("generating RSA %d key: %w", keySize, err)
		}
		return k, nil
	case "EC", "ECDSA":
		c, err := ellipticCurve(curve)
		if err != nil {
			return nil, fmt.Errorf("generating EC key: %w", err)
		}
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating EC %s key: %w", c.Params().Name, err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("generating key: unsupported key type %q (want RSA or EC)", keyType)
	}
}

func ellipticCurve(name string) (elliptic.Curve, error) {
	switch strings.ToUpper(strings.ReplaceAll(name, "-", "")) {
	case "", "P256":
		return elliptic.P256(), nil
	case "P384":
		return elliptic.P384(), nil
	case "P521":
		return elliptic.P521(), nil
	default:
		return nil, fmt.Errorf("unsupported curve %q (want P-256, P-384 or P-521)", name)
	}
}

// ParseKeyPEM parses an RSA or ECDSA private key from PEM: PKCS#8
// ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
// Errors never contain key material.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("parsing private key: no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("parsing private key: unexpected PEM block type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", strings.ToLower(block.Type), err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("parsing private key: unsupported key type %T", key)
	}
}

// MarshalKeyPEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block.
func MarshalKeyPEM(key crypto.Signer) ([]byte, error) {
	if key == nil {
		return nil, errors.New("encoding private key: no key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key as PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
