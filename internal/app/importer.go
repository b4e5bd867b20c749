package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/azkv"
)

// ImportResult is what happened to one certificate found in Key Vault.
type ImportResult struct {
	Name string
	// Outcome is imported, present (the same version is stored already),
	// conflict (another certificate of that name is stored) or failed.
	Outcome string
	Detail  string
}

// ImportFromAzure adopts the certificates Key Vault Acmebot issued into the
// Azure Key Vault destination dest: each one's current version, with its
// key and chain, becomes a version in the built-in store with a spec made
// from its policy and Acmebot tags, delivered to dest (where it is already)
// and the default destinations, so that certkeeper renews it from now on.
// With dryRun nothing is stored. transport replaces the HTTP client (tests).
func ImportFromAzure(ctx context.Context, cfg *config.Config, st *store.Store, key *secret.Key, dest string,
	dryRun bool, transport policy.Transporter) ([]ImportResult, error) {
	var block *config.Destination
	for i := range cfg.Destinations {
		if cfg.Destinations[i].Name == dest {
			block = &cfg.Destinations[i]
		}
	}
	if block == nil || block.AzureKeyVault == nil {
		return nil, fmt.Errorf("%q is not a configured destination of type azureKeyVault", dest)
	}
	one := *cfg
	one.Destinations = []config.Destination{*block}
	dests, err := BuildDestinations(&one, transport, nil)
	if err != nil {
		return nil, err
	}
	kv := dests[dest].(*azkv.KeyVault)
	if err := CheckMasterKey(ctx, st, key); err != nil {
		return nil, err
	}
	builtin := vault.NewBuiltin(st, key)
	adopted, skipped, err := kv.ListAcmebot(ctx)
	if err != nil {
		return nil, err
	}
	var out []ImportResult
	for name, err := range skipped {
		out = append(out, ImportResult{Name: name, Outcome: "failed", Detail: err.Error()})
	}
	providers := map[string]bool{}
	for _, p := range cfg.DNS.Providers {
		providers[p.Name] = true
	}
	for _, a := range adopted {
		v := a.Version
		r := ImportResult{Name: v.Name}
		if cur, err := builtin.Latest(ctx, v.Name); err == nil {
			r.Outcome, r.Detail = "conflict", "certkeeper holds another certificate of that name (version "+cur.ID+")"
			if cur.Thumbprint == v.Thumbprint {
				r.Outcome, r.Detail = "present", "imported before as version "+cur.ID
			}
			out = append(out, r)
			continue
		} else if !errors.Is(err, vault.ErrNotFound) {
			return out, err
		}
		v.ID = operation.NewID()
		v.Spec.Destinations = append(slices.Clone(cfg.DefaultDestinations), dest)
		v.Spec.Destinations = slices.Compact(sortedUnique(v.Spec.Destinations))
		if v.Spec.DNSProviderName != "" && !providers[v.Spec.DNSProviderName] {
			r.Detail = fmt.Sprintf("the DNS provider %q is not configured: renewals use the provider whose zones hold the names; ",
				v.Spec.DNSProviderName)
			v.Spec.DNSProviderName = ""
		}
		if v.ACMEEndpoint == "" || endpointHost(v.ACMEEndpoint) == endpointHost(cfg.ACME.Endpoint) {
			v.ACMEEndpoint = cfg.ACME.Endpoint
		}
		r.Outcome = "imported"
		r.Detail += fmt.Sprintf("%v, expires %s, as version %s", v.Spec.DNSNames, v.NotAfter.Format("2006-01-02"), v.ID)
		if !dryRun {
			if err := builtin.Put(ctx, v); err != nil {
				return out, fmt.Errorf("storing %s: %w", v.Name, err)
			}
			if err := st.SetDelivered(ctx, v.Name, dest, v.ID, v.CreatedAt); err != nil {
				return out, err
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return s
}

// endpointHost is the host of a directory URL.
func endpointHost(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Hostname()
	}
	return u
}
