package app

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

var _ api.Backend = (*App)(nil)

// Issue implements api.Backend: it checks what can be checked before an
// order is placed — every name has a zone, the provider exists, the profile
// is offered — and enqueues the operation.
func (a *App) Issue(ctx context.Context, spec certificate.Spec) (string, error) {
	if err := a.check(ctx, &spec); err != nil {
		return "", err
	}
	return a.queue.Enqueue(ctx, operation.KindIssue, spec)
}

// check validates spec against the configuration and fills in the provider
// when every name is in one provider's zones.
func (a *App) check(ctx context.Context, spec *certificate.Spec) error {
	if err := a.dns.Check(ctx, spec.DNSNames, spec.DNSProviderName); err != nil {
		if errors.Is(err, dns.ErrUnknownProvider) {
			return &api.InvalidError{Field: "DnsProviderName", Message: fmt.Sprintf(
				"The DNS provider %q is not configured.", spec.DNSProviderName)}
		}
		if nz := (*dns.NoZoneError)(nil); errors.As(err, &nz) {
			return &api.InvalidError{Field: "DnsNames", Message: fmt.Sprintf(
				"No configured DNS zone contains %s.", strings.Join(nz.Names, ", "))}
		}
		return err
	}
	if spec.DNSAlias != "" {
		if _, _, err := a.dns.ZoneFor(ctx, spec.DNSAlias, spec.DNSProviderName); err != nil {
			return &api.InvalidError{Field: "DnsAlias", Message: fmt.Sprintf(
				"No configured DNS zone contains the alias %s.", spec.DNSAlias)}
		}
	}
	if spec.DNSProviderName == "" {
		var names []string
		for _, n := range spec.DNSNames {
			p, _, err := a.dns.ZoneFor(ctx, n, "")
			if err != nil {
				return err
			}
			if !slices.Contains(names, p.Name) {
				names = append(names, p.Name)
			}
		}
		if len(names) == 1 {
			spec.DNSProviderName = names[0]
		}
	}
	profile := spec.Profile
	if profile == "" {
		profile = a.cfg.ACME.Profile
	}
	if profile != "" {
		if offered, err := a.offeredProfiles(ctx); err == nil && len(offered) > 0 {
			if _, ok := offered[profile]; !ok {
				return &api.InvalidError{Field: "Profile", Message: fmt.Sprintf(
					"The CA does not offer the profile %q; it offers %s.", profile,
					strings.Join(slices.Sorted(maps.Keys(offered)), ", "))}
			}
		} else if err != nil {
			// The operation will report the CA's state; the request itself is fine.
			a.logger.WarnContext(ctx, "could not read the CA's profiles", "error", err)
		}
	}
	return nil
}

// profilesTTL is how long the CA's profile list is reused.
const profilesTTL = 5 * time.Minute

func (a *App) offeredProfiles(ctx context.Context) (map[string]string, error) {
	a.profilesMu.Lock()
	defer a.profilesMu.Unlock()
	if a.profiles != nil && time.Since(a.profilesAt) < profilesTTL {
		return a.profiles, nil
	}
	p, err := a.issuer.Profiles(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = map[string]string{}
	}
	a.profiles, a.profilesAt = p, time.Now()
	return p, nil
}

// Renew implements api.Backend: the certificate is issued again with its
// stored spec. While a renewal of it (manual or automatic) is pending or
// running, that renewal's operation id is returned and nothing is started.
func (a *App) Renew(ctx context.Context, name string) (string, error) {
	id, _, err := a.StartRenewal(ctx, name)
	return id, err
}

// Revoke implements api.Backend.
func (a *App) Revoke(ctx context.Context, name string, reason int) error {
	v, err := a.store.LatestVersion(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return vault.ErrNotFound
	}
	if err != nil {
		return err
	}
	block, _ := pem.Decode([]byte(v.CertPEM))
	if block == nil {
		return fmt.Errorf("reading the stored certificate of %s: no PEM block", name)
	}
	if err := a.issuer.Revoke(ctx, block.Bytes, reason); err != nil {
		return fmt.Errorf("revoking %s (serial %s): %w", name, v.Serial, err)
	}
	if err := a.vault.MarkRevoked(ctx, v.ID, time.Now().UTC()); err != nil {
		return fmt.Errorf("recording the revocation of %s: %w", name, err)
	}
	a.logger.InfoContext(ctx, "certificate revoked", "certificate", name, "serial", v.Serial, "reason", reason)
	a.revoked(ctx, v)
	return nil
}

// Operation implements api.Backend.
func (a *App) Operation(ctx context.Context, id string) (operation.Operation, error) {
	op, err := a.store.Operation(ctx, id)
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

// ACMEEndpoint implements api.Backend.
func (a *App) ACMEEndpoint() string { return a.cfg.ACME.Endpoint }

// Certificate implements api.Backend.
func (a *App) Certificate(ctx context.Context, name string) (vault.Version, error) {
	return a.vault.Latest(ctx, name)
}
