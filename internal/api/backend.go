package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// Backend is what the API needs from the rest of certkeeper. Implementations
// are safe for concurrent use.
type Backend interface {
	// Issue starts issuing a certificate for spec, which the API validated,
	// and returns the operation id. A request that is well formed but cannot
	// be served (a name outside every zone, an unknown provider or profile)
	// is an *InvalidError.
	Issue(ctx context.Context, spec certificate.Spec) (string, error)
	// Renew starts renewing the named certificate with its stored spec and
	// returns the operation id, or vault.ErrNotFound.
	Renew(ctx context.Context, name string) (string, error)
	// Revoke revokes the newest version of the named certificate at the CA
	// and returns once the CA confirmed, or vault.ErrNotFound, or an error
	// carrying the CA's own words. reason is an RFC 5280 reason code.
	Revoke(ctx context.Context, name string, reason int) error
	// Operation returns the operation, or ErrOperationNotFound.
	Operation(ctx context.Context, id string) (operation.Operation, error)
	// Certificates returns the newest version of every certificate.
	Certificates(ctx context.Context) ([]vault.Version, error)
	// Certificate returns the newest version of the named certificate with
	// its private key, or vault.ErrNotFound.
	Certificate(ctx context.Context, name string) (vault.Version, error)
	// CertificateSpec returns the spec of the named certificate's newest
	// version, without its private key, or vault.ErrNotFound: what zone
	// checks need before a renewal or revocation.
	CertificateSpec(ctx context.Context, name string) (certificate.Spec, error)
	// DNSZones lists the zones of every provider, in configuration order;
	// a provider whose listing failed carries its error (shown in its own
	// entry of the answer).
	DNSZones(ctx context.Context) []ZoneGroup
	// ACMEEndpoint is the directory URL of the CA configured now.
	ACMEEndpoint() string
}

// ZoneGroup is the zones one DNS provider manages.
type ZoneGroup struct {
	ProviderName string
	Zones        []string
	// Err is set when the provider's zones could not be listed.
	Err error
}

// Authenticator tells who made a request.
type Authenticator interface {
	// Authenticate returns the caller, or auth.ErrUnauthenticated.
	Authenticate(r *http.Request) (auth.Principal, error)
}

// OperationStatusReader is what a Backend may also offer for GET
// /api/state/{id}, which clients poll often: the operation's status,
// failure and creator, without its steps and deliveries. Without it the
// route reads the whole operation with Backend.Operation.
type OperationStatusReader interface {
	// OperationStatus returns the operation with at least ID, Status,
	// FailedStep, Error and CreatedBy set, or ErrOperationNotFound.
	OperationStatus(ctx context.Context, id string) (operation.Operation, error)
}

// ErrOperationNotFound is returned by Backend.Operation for an unknown id.
var ErrOperationNotFound = errors.New("operation not found")

// InvalidError is a request the API accepted in shape but the backend cannot
// serve. It renders as a 400 validation problem with Field as the key of
// errors.
type InvalidError struct {
	// Field is the PascalCase request field, such as DnsNames.
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }
