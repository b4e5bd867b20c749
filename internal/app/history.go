package app

import (
	"context"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
)

var (
	_ api.OperationLister = (*App)(nil)
)

// Operations implements api.OperationLister.
func (a *App) Operations(ctx context.Context, f api.OperationFilter) ([]operation.Operation, error) {
	return a.store.Operations(ctx, store.OperationFilter{
		CertificateName: f.CertificateName, Statuses: f.Statuses, Limit: f.Limit,
	})
}
