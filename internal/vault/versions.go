package vault

import (
	"context"
	"errors"

	"github.com/certkeeper/certkeeper/internal/store"
)

// Versions returns every version of the named certificate, newest first,
// without private keys, or ErrNotFound.
func (b *Builtin) Versions(ctx context.Context, name string) ([]Version, error) {
	rows, err := b.store.Versions(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := make([]Version, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, nil
}
