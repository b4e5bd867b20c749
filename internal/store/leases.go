package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AcquireLease gives the lease of certificate name to operation opID until
// ttl from now, when the lease is free, expired, already opID's, or held by
// an operation that is no longer pending or running (finished, or pruned).
// It reports whether opID holds the lease and, when it does not, which
// operation does. One statement decides, so concurrent callers on any
// number of replicas never both get it.
func (s *Store) AcquireLease(ctx context.Context, name, opID string, ttl time.Duration) (bool, string, error) {
	now := time.Now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO certificate_leases (certificate_name, operation_id, expires_at)
		VALUES ($1, $2, $3)
		ON CONFLICT (certificate_name) DO UPDATE SET operation_id = excluded.operation_id, expires_at = excluded.expires_at
		WHERE certificate_leases.operation_id = excluded.operation_id
			OR certificate_leases.expires_at < $4
			OR NOT EXISTS (SELECT 1 FROM operations
				WHERE operations.id = certificate_leases.operation_id AND operations.status IN ('pending', 'running'))`,
		name, opID, now.Add(ttl).UnixMicro(), now.UnixMicro())
	if err != nil {
		return false, "", fmt.Errorf("taking the lease of certificate %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, "", fmt.Errorf("taking the lease of certificate %s: %w", name, err)
	} else if n == 1 {
		return true, opID, nil
	}
	var holder string
	err = s.db.QueryRowContext(ctx, `SELECT operation_id FROM certificate_leases WHERE certificate_name = $1`, name).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		// Released between the two statements: the next try gets it.
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("reading the lease of certificate %s: %w", name, err)
	}
	return holder == opID, holder, nil
}

// RenewLease extends opID's lease of certificate name to ttl from now. It
// returns ErrNotFound when opID no longer holds it.
func (s *Store) RenewLease(ctx context.Context, name, opID string, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE certificate_leases SET expires_at = $1
		WHERE certificate_name = $2 AND operation_id = $3`, time.Now().Add(ttl).UnixMicro(), name, opID)
	if err != nil {
		return fmt.Errorf("renewing the lease of certificate %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ReleaseLease frees certificate name's lease if opID holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, opID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM certificate_leases WHERE certificate_name = $1 AND operation_id = $2`,
		name, opID); err != nil {
		return fmt.Errorf("releasing the lease of certificate %s: %w", name, err)
	}
	return nil
}
