package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/job"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/azkv"
	"github.com/certkeeper/certkeeper/internal/vault/files"
	"github.com/certkeeper/certkeeper/internal/vault/kv"
)

var _ api.VersionBackend = (*App)(nil)

// BuildDestinations builds every configured destination, by name. transport,
// when not nil, replaces the HTTP client of Azure Key Vault destinations and
// their credentials (tests).
func BuildDestinations(cfg *config.Config, transport policy.Transporter, logger *slog.Logger) (map[string]vault.Destination, error) {
	out := make(map[string]vault.Destination, len(cfg.Destinations))
	for _, d := range cfg.Destinations {
		var (
			dest vault.Destination
			err  error
		)
		switch {
		case d.Files != nil:
			f := d.Files
			dest, err = files.New(files.Config{Dir: f.Dir, Owner: f.Owner, Group: f.Group, Mode: fs.FileMode(f.Mode),
				KeyMode: fs.FileMode(f.KeyMode), DirMode: fs.FileMode(f.DirMode), PFX: f.PFX, PFXPassword: f.PFXPassword,
				ReloadCommand: f.ReloadCommand, ReloadTimeout: f.ReloadTimeout, Logger: logger})
		case d.Vault != nil:
			v := d.Vault
			var ca []byte
			if v.CACert != "" {
				if ca, err = os.ReadFile(v.CACert); err != nil {
					return nil, fmt.Errorf("destination %s: reading caCert: %w", d.Name, err)
				}
			}
			dest, err = kv.New(kv.Config{Address: v.Address, Mount: v.Mount, Path: v.Path, Namespace: v.Namespace,
				AuthMethod: v.Auth, AuthMount: v.AuthMount, Token: v.Token, RoleID: v.RoleID, SecretID: v.SecretID,
				Role: v.KubernetesRole, TokenFile: v.ServiceAccountTokenFile, CACert: ca, Logger: logger})
		case d.AzureKeyVault != nil:
			a := d.AzureKeyVault
			cred, cerr := azkv.NewCredential(azkv.CredentialConfig{Kind: a.Credential, TenantID: a.TenantID,
				ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenFile: a.FederatedTokenFile,
				AuthorityHost: a.AuthorityHost, Transport: transport})
			if cerr != nil {
				return nil, fmt.Errorf("destination %s: %w", d.Name, cerr)
			}
			dest, err = azkv.New(azkv.Config{VaultURL: a.VaultURL, Credential: cred, HTTPClient: transport,
				DisableChallengeResourceVerification: a.DisableChallengeResourceVerification, Logger: logger})
		default:
			return nil, fmt.Errorf("destination %s: type %q has no settings", d.Name, d.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.Name, err)
		}
		out[d.Name] = dest
	}
	return out, nil
}

// setupDeliveries attaches the delivery step to runner when destinations
// are configured.
func (a *App) setupDeliveries(runner *job.Runner, transport policy.Transporter) error {
	dests, err := BuildDestinations(a.cfg, transport, a.logger)
	if err != nil {
		return err
	}
	dl := a.cfg.Delivery
	a.deliveries = job.NewDeliveries(a.store, a.vault, job.DeliveryOptions{Destinations: dests,
		Defaults: a.cfg.DefaultDestinations, Timeout: dl.Timeout, RetryMin: dl.RetryMin, RetryMax: dl.RetryMax,
		MaxAttempts: dl.MaxAttempts}, a.logger)
	runner.WithDeliveries(a.deliveries)
	return nil
}

// CheckMasterKey verifies that key is the one the database's sealed values
// are sealed with (recording it on first use).
func CheckMasterKey(ctx context.Context, st *store.Store, key *secret.Key) error {
	err := st.CheckMasterKey(ctx, key.Seal, key.Open)
	if errors.Is(err, store.ErrWrongMasterKey) {
		return fmt.Errorf("%w: start certkeeper with the master key it was using, or restore it from a backup", err)
	}
	return err
}

// checkDestinations refuses a spec that names a destination that is not
// configured.
func (a *App) checkDestinations(spec certificate.Spec) error {
	if a.deliveries == nil {
		return nil
	}
	if unknown := a.deliveries.Unknown(spec.Destinations); len(unknown) > 0 {
		return &api.InvalidError{Field: "Destinations", Message: fmt.Sprintf(
			"The destinations %s are not configured.", strings.Join(unknown, ", "))}
	}
	return nil
}

// Versions implements api.VersionBackend.
func (a *App) Versions(ctx context.Context, name string) ([]vault.Version, error) {
	return a.vault.Versions(ctx, name)
}

// CertificateVersion implements api.VersionBackend.
func (a *App) CertificateVersion(ctx context.Context, name, id string) (vault.Version, error) {
	v, err := a.vault.ByID(ctx, id)
	if err != nil {
		return vault.Version{}, err
	}
	if v.Name != name {
		return vault.Version{}, vault.ErrNotFound
	}
	return v, nil
}

// DestinationStates implements api.VersionBackend.
func (a *App) DestinationStates(ctx context.Context) (map[string][]operation.DestinationState, error) {
	return a.store.DestinationStates(ctx)
}
