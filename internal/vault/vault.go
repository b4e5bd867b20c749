// Package vault holds certificate storage: the Vault interface that keeps
// every version of every certificate, and its backends. The built-in backend
// keeps versions in certkeeper's own database with private keys encrypted
// under the master key.
package vault

import (
	"context"
	"errors"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
)

// ErrNotFound is returned when a certificate or version does not exist.
var ErrNotFound = errors.New("certificate not found")

// Version is one issued version of a certificate.
type Version struct {
	// ID identifies the version: 32 lowercase hex characters.
	ID string
	// Name is the certificate name the version belongs to.
	Name string
	// Spec is what the certificate is issued with.
	Spec certificate.Spec
	// ACMEEndpoint is the directory URL of the CA that issued it.
	ACMEEndpoint string
	// CA is the configured name of the CA that issued it; empty for
	// versions stored before CAs had names.
	CA string
	// Serial is the certificate serial number in lowercase hex.
	Serial string
	// Thumbprint is the SHA-1 of the DER certificate in uppercase hex.
	Thumbprint string
	NotBefore  time.Time
	NotAfter   time.Time
	// CertPEM is the leaf; ChainPEM the issuers after it.
	CertPEM  []byte
	ChainPEM []byte
	// KeyPEM is the private key as PKCS#8 PEM. List leaves it, CertPEM
	// and ChainPEM empty.
	KeyPEM []byte
	// CertURL is the certificate's URL at the CA.
	CertURL   string
	CreatedAt time.Time
	// RevokedAt is set once the CA confirmed revocation.
	RevokedAt *time.Time
	// AccountURI is the ACME account that issued it; Replaces is the ARI
	// identifier (RFC 9773) of the certificate it replaced, when the CA
	// accepted the order as a replacement.
	AccountURI string
	Replaces   string
}

// Vault keeps certificates. Implementations are safe for concurrent use.
type Vault interface {
	// Put stores v as the newest version of v.Name, all or nothing.
	Put(ctx context.Context, v Version) error
	// Latest returns the newest version of name with its private key, or
	// ErrNotFound.
	Latest(ctx context.Context, name string) (Version, error)
	// List returns the newest version of every certificate, without private
	// keys and without CertPEM and ChainPEM (Latest has them), ordered by
	// name.
	List(ctx context.Context) ([]Version, error)
	// MarkRevoked records that the version was revoked at the given time, or
	// returns ErrNotFound.
	MarkRevoked(ctx context.Context, versionID string, at time.Time) error
}
