package app

import (
	"context"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

var (
	_ api.VersionLister   = (*App)(nil)
	_ api.OperationLister = (*App)(nil)
)

// Versions implements api.VersionLister.
func (a *App) Versions(ctx context.Context, name string) ([]vault.Version, error) {
	return a.vault.Versions(ctx, name)
}

// Operations implements api.OperationLister.
func (a *App) Operations(ctx context.Context, f api.OperationFilter) ([]operation.Operation, error) {
	return a.store.Operations(ctx, store.OperationFilter{
		CertificateName: f.CertificateName, Statuses: f.Statuses, Limit: f.Limit,
	})
}
