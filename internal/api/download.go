package api

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// download answers GET /api/certificates/{certificateName}/download with the
// newest version and its private key; only callers with
// auth.RoleReadCertificate (or Admin) get here.
//
//   - format=pem (the default): application/x-pem-file holding the private
//     key (PKCS#8), then the leaf, then the issuers, as Key Vault exports PEM.
//   - format=pfx: application/x-pkcs12 (modern AES-256/SHA-256 encryption)
//     protected by a random one-time password sent in the X-Pfx-Password
//     header; the password is not kept.
func (s *server) download(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name := r.PathValue("certificateName")
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "pem"
	}
	if format != "pem" && format != "pfx" {
		return validationError(map[string][]string{"Format": {"The Format must be pem or pfx."}})
	}
	if !certificate.NamePattern.MatchString(name) {
		return certificateNotFound(name)
	}
	v, err := s.backend.Certificate(r.Context(), name)
	if errors.Is(err, vault.ErrNotFound) {
		return certificateNotFound(name)
	}
	if err != nil {
		return fmt.Errorf("reading certificate %s: %w", name, err)
	}
	return s.writeDownload(w, r, p, v, format)
}

// writeDownload answers with version v in format (pem or pfx) and logs who
// downloaded which private key. A caller limited to zones gets 403 for a
// certificate outside them.
func (s *server) writeDownload(w http.ResponseWriter, r *http.Request, p auth.Principal, v vault.Version, format string) error {
	if err := s.allow(p, auth.RoleReadCertificate, "download", v.Spec.DNSNames); err != nil {
		return err
	}
	name := v.Name
	s.logger.InfoContext(r.Context(), "private key downloaded", "certificate", name, "version", v.ID,
		"format", format, "caller", p.Name, "trace_id", traceID(r.Context()))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, name, format))
	if format == "pem" {
		var body bytes.Buffer
		body.Write(v.KeyPEM)
		body.Write(v.CertPEM)
		body.Write(v.ChainPEM)
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body.Bytes())
		return nil
	}
	pfx, password, err := encodePFX(v)
	if err != nil {
		return fmt.Errorf("encoding %s as PFX: %w", name, err)
	}
	w.Header().Set("Content-Type", "application/x-pkcs12")
	w.Header().Set("X-Pfx-Password", password)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(pfx)
	return nil
}

func encodePFX(v vault.Version) ([]byte, string, error) {
	key, err := issuer.ParseKeyPEM(v.KeyPEM)
	if err != nil {
		return nil, "", err
	}
	certs, err := parseCertificates(append(append([]byte{}, v.CertPEM...), v.ChainPEM...))
	if err != nil {
		return nil, "", err
	}
	if len(certs) == 0 {
		return nil, "", errors.New("no certificate stored")
	}
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	password := base64.RawURLEncoding.EncodeToString(raw)
	pfx, err := pkcs12.Modern2023.Encode(key, certs[0], certs[1:], password)
	if err != nil {
		return nil, "", err
	}
	return pfx, password, nil
}

func parseCertificates(data []byte) ([]*x509.Certificate, error) {
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
			return nil, err
		}
		out = append(out, c)
	}
}
