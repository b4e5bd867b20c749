package azkv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
)

type x509Certificate = x509.Certificate

// curveOf names an EC key's curve as Key Vault does (P-256, P-384, P-521).
func curveOf(key any) azcertificates.CurveName {
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return ""
	}
	switch k.Curve.Params().Name {
	case "P-256":
		return azcertificates.CurveNameP256
	case "P-384":
		return azcertificates.CurveNameP384
	case "P-521":
		return azcertificates.CurveNameP521
	}
	return ""
}

// marshalKey returns a private key as PKCS#8 PEM.
func marshalKey(key any) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// splitPEM splits a PEM bundle (Key Vault's application/x-pem-file export)
// into the private key, the first certificate and the others.
func splitPEM(data []byte) (key, leaf, chain []byte) {
	var chainBuf bytes.Buffer
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return key, leaf, chainBuf.Bytes()
		}
		enc := pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})
		switch {
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			key = enc
		case b.Type == "CERTIFICATE" && leaf == nil:
			leaf = enc
		case b.Type == "CERTIFICATE":
			chainBuf.Write(enc)
		}
	}
}
