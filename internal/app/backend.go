package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

var (
	_ api.Backend               = (*App)(nil)
	_ api.OperationStatusReader = (*App)(nil)
)

// Issue implements api.Backend: it checks what can be checked before an
// order is placed — every name has a zone, the provider exists, the profile
// is offered — and enqueues the operation.
func (a *App) Issue(ctx context.Context, spec certificate.Spec) (string, error) {
	if err := a.check(ctx, &spec); err != nil {
		return "", err
	}
	if err := a.checkDestinations(spec); err != nil {
		return "", err
	}
	return a.queue.Enqueue(ctx, operation.KindIssue, spec)
}

// check validates spec against the configuration and fills in the provider
// when every name is in one provider's zones.
func (a *App) check(ctx context.Context, spec *certificate.Spec) error {
	targets, err := a.dns.Targets(ctx, spec.DNSNames, spec.DNSProviderName, spec.DNSAlias)
	if err != nil {
		if errors.Is(err, dns.ErrUnknownProvider) {
			return &api.InvalidError{Field: "DnsProviderName", Message: fmt.Sprintf(
				"The DNS provider %q is not configured.", spec.DNSProviderName)}
		}
		if spec.DNSAlias != "" {
			if nz := (*dns.NoZoneError)(nil); errors.As(err, &nz) {
				return &api.InvalidError{Field: "DnsAlias", Message: fmt.Sprintf(
					"No configured DNS zone contains the alias %s.", spec.DNSAlias)}
			}
		}
		if nz := (*dns.NoZoneError)(nil); errors.As(err, &nz) && len(nz.Names) > 0 && !strings.HasPrefix(nz.Names[0], "_acme-challenge.") {
			return &api.InvalidError{Field: "DnsNames", Message: fmt.Sprintf(
				"No configured DNS zone contains %s.", strings.Join(nz.Names, ", "))}
		}
		if ze := (*dns.ZoneConflictError)(nil); errors.As(err, &ze) {
			return &api.InvalidError{Field: "DnsProviderName", Message: ze.Error()}
		}
		return &api.InvalidError{Field: "DnsNames", Message: err.Error()}
	}
	if spec.DNSProviderName == "" {
		var names []string
		for _, t := range targets {
			if !slices.Contains(names, t.Provider) {
				names = append(names, t.Provider)
			}
		}
		if len(names) == 1 {
			spec.DNSProviderName = names[0]
		}
	}
	// The CAs named, the profile and the names' CAA records (cas.go).
	return a.checkCAs(ctx, *spec)
}

// Renew implements api.Backend: the certificate is issued again with its
// stored spec. While a renewal of it (manual or automatic) is pending or
// running, that renewal's operation id is returned and nothing is started.
func (a *App) Renew(ctx context.Context, name string) (string, error) {
	id, _, err := a.StartRenewal(ctx, name)
	return id, err
}

// Revoke implements api.Backend: at the CA that issued the newest version,
// signed by the certificate's own key for keyCompromise (cas.go).
func (a *App) Revoke(ctx context.Context, name string, reason int) error {
	v, err := a.vault.Latest(ctx, name)
	if err != nil {
		return err
	}
	return a.revokeVersion(ctx, v, reason)
}

// Operation implements api.Backend.
func (a *App) Operation(ctx context.Context, id string) (operation.Operation, error) {
	op, err := a.store.Operation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return operation.Operation{}, api.ErrOperationNotFound
	}
	if err != nil {
		return op, err
	}
	op.Deliveries, err = a.store.Deliveries(ctx, id)
	return op, err
}

// OperationStatus implements api.OperationStatusReader: the operation
// without its steps and deliveries, for GET /api/state.
func (a *App) OperationStatus(ctx context.Context, id string) (operation.Operation, error) {
	op, err := a.store.OperationStatus(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return operation.Operation{}, api.ErrOperationNotFound
	}
	return op, err
}

// Certificates implements api.Backend.
func (a *App) Certificates(ctx context.Context) ([]vault.Version, error) {
	return a.vault.List(ctx)
}

// DNSZones implements api.Backend.
func (a *App) DNSZones(ctx context.Context) []api.ZoneGroup {
	listings := a.dns.Zones(ctx)
	out := make([]api.ZoneGroup, len(listings))
	for i, l := range listings {
		out[i] = api.ZoneGroup{ProviderName: l.ProviderName, Zones: l.Zones, Err: l.Err}
	}
	return out
}

// ACMEEndpoint implements api.Backend: the first default CA's directory.
func (a *App) ACMEEndpoint() string { return a.cas.Default().DirectoryURL() }

// Certificate implements api.Backend.
func (a *App) Certificate(ctx context.Context, name string) (vault.Version, error) {
	return a.vault.Latest(ctx, name)
}
