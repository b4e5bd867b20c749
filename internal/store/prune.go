package store

import (
	"context"
	"fmt"
	"time"
)

// Pruned counts what Prune removed.
type Pruned struct {
	Operations int64
	Leases     int64
}

// Prune removes finished operations last updated before before — except
// those still recording DNS records to remove — and expired certificate
// leases. Certificate versions are kept: they outlive the operations
// that produced them.
func (s *Store) Prune(ctx context.Context, before time.Time) (Pruned, error) {
	var p Pruned
	res, err := s.db.ExecContext(ctx, `DELETE FROM operations
		WHERE status IN ('succeeded', 'failed') AND updated_at < $1 AND pending_challenges = ''`, before.UnixMicro())
	if err != nil {
		return p, fmt.Errorf("pruning operations: %w", err)
	}
	p.Operations, _ = res.RowsAffected()
	res, err = s.db.ExecContext(ctx, `DELETE FROM certificate_leases WHERE expires_at < $1`, time.Now().UnixMicro())
	if err != nil {
		return p, fmt.Errorf("pruning certificate leases: %w", err)
	}
	p.Leases, _ = res.RowsAffected()
	return p, nil
}
