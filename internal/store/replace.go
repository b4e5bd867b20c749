package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SetReplacement records on operation id that it replaces the version
// versionID, which is to be revoked with the RFC 5280 reason code once the
// new version is stored. q may be the transaction that inserts the
// operation.
func (s *Store) SetReplacement(ctx context.Context, q Querier, id, versionID string, reason int) error {
	res, err := q.ExecContext(ctx, `UPDATE operations SET replaces_version = $1, revocation_reason = $2 WHERE id = $3`,
		versionID, reason, id)
	if err != nil {
		return fmt.Errorf("recording the version operation %s replaces: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Replacement returns what SetReplacement recorded: the replaced version id
// ("" when the operation replaces none) and the reason code, or ErrNotFound.
func (s *Store) Replacement(ctx context.Context, id string) (versionID string, reason int, err error) {
	var r int64
	err = s.db.QueryRowContext(ctx, `SELECT replaces_version, revocation_reason FROM operations WHERE id = $1`, id).
		Scan(&versionID, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, ErrNotFound
	}
	if err != nil {
		return "", 0, fmt.Errorf("reading the version operation %s replaces: %w", id, err)
	}
	return versionID, int(r), nil
}
