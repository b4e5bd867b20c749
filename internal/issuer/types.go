// Package issuer holds the ACME flow (RFC 8555) that turns a certificate
// request into an issued certificate: the account, the order, the DNS-01
// challenges, finalization with a CSR, download, and revocation. It is built on
// lego's ACME client (acme/api) with certkeeper's own orchestration and an
// adaptive polling backoff.
package issuer

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"

	"github.com/certkeeper/certkeeper/internal/operation"
)

// Challenge is one DNS-01 challenge to answer: the TXT value that must be
// served at _acme-challenge.<Domain>.
type Challenge struct {
	// Domain is the identifier value without any "*." prefix, lowercase.
	Domain string `json:"domain"`
	// Wildcard is true when the identifier was requested as "*.<Domain>".
	Wildcard bool `json:"wildcard,omitempty"`
	// Value is the TXT record value (RFC 8555 section 8.4).
	Value string `json:"value"`
}

// Solver publishes and removes DNS-01 challenge records. Present and Wait
// are called once per order with every challenge of the order; CleanUp is
// called with the same challenges on every exit path, after Present was called.
type Solver interface {
	// Present writes the TXT records for challenges.
	Present(ctx context.Context, challenges []Challenge) error
	// Wait returns when every server that the CA may ask answers with the
	// records, or an error naming the servers that do not.
	Wait(ctx context.Context, challenges []Challenge) error
	// CleanUp removes the records; removing records that are not there is
	// not an error.
	CleanUp(ctx context.Context, challenges []Challenge) error
}

// Preflighter is implemented by solvers that can check, before an order is
// placed, that the challenges of names can be answered (zones, CNAME
// delegations, name server delegation), so that a certain failure costs no
// order at the CA.
type Preflighter interface {
	// Preflight returns nil when the records for names can be written and
	// seen, else an error saying what is missing.
	Preflight(ctx context.Context, names []string) error
}

// Progress is told when the flow enters a step.
type Progress func(ctx context.Context, step operation.Step)

// Account is an ACME account at one CA directory.
type Account struct {
	DirectoryURL string
	URI          string
	// Key is the account private key.
	Key      crypto.Signer
	Contacts []string
}

// AccountStore keeps one account per CA directory URL.
type AccountStore interface {
	// Account returns the account for directoryURL, or ErrNoAccount.
	Account(ctx context.Context, directoryURL string) (Account, error)
	// SaveAccount stores the account, replacing any for its directory URL.
	SaveAccount(ctx context.Context, acct Account) error
}

// AccountLocker is an AccountStore shared by several processes that can
// make registration exclusive among them, so that replicas starting at once
// register one account. The Issuer uses it when its AccountStore has it.
type AccountLocker interface {
	// LockAccount runs fn while no other caller, in this process or another
	// one sharing the store, runs fn for directoryURL. It waits for its turn
	// until ctx is done.
	LockAccount(ctx context.Context, directoryURL string, fn func(ctx context.Context) error) error
}

// ErrNoAccount is returned by AccountStore.Account when none is stored.
var ErrNoAccount = errors.New("no ACME account stored")

// Request is what to issue.
type Request struct {
	// Names are the identifiers, in order; the first is the subject CN.
	Names []string
	// KeyType is "RSA" or "EC"; KeySize and Curve go with it.
	KeyType string
	KeySize int
	Curve   string
	// Key, when not nil, is used instead of generating a new key (reuseKey).
	Key crypto.Signer
	// Profile is the ACME profile; empty means the issuer's default.
	Profile string
	// PreferredChain is the common name of the top issuer of the chain to
	// download when the CA offers alternate chains (RFC 8555 section
	// 7.4.2); empty, or no chain matching, means the CA's default chain.
	PreferredChain string
	// Replaces, when not nil, is the certificate this order replaces (RFC
	// 9773 section 5). It is sent only when the account that issued it is
	// the account placing the order, and the order is placed again without
	// it when the CA refuses it.
	Replaces *Replacement
}

// Replacement names a certificate that an order replaces.
type Replacement struct {
	// CertID is the certificate's ARI identifier (see ARICertID).
	CertID string
	// AccountURI is the ACME account that issued it; empty means unknown,
	// and the replacement is then not announced.
	AccountURI string
}

// Certificate is an issued certificate.
type Certificate struct {
	Leaf *x509.Certificate
	// CertPEM is the leaf alone; ChainPEM the issuers after it, as the CA sent them.
	CertPEM  []byte
	ChainPEM []byte
	// Key is the certificate's private key, KeyPEM the same as PKCS#8 PEM.
	Key    crypto.Signer
	KeyPEM []byte
	// URL is the certificate's URL at the CA.
	URL string
	// AccountURI is the ACME account that ordered it.
	AccountURI string
	// Replaced is the ARI identifier of the certificate the CA accepted the
	// order as a replacement of; empty when no replacement was announced or
	// the CA refused it.
	Replaced string
}
