package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The sources of API keys.
const (
	KeySourceConfig  = "config"
	KeySourceManaged = "managed"
)

// APIKey is an API key as stored: a hex SHA-256 hash, never the key.
type APIKey struct {
	ID    string
	Name  string
	Hash  string
	Roles []string
	// Zones limit the roles; empty is every zone.
	Zones []string
	// Source is KeySourceConfig or KeySourceManaged.
	Source    string
	CreatedBy string
	CreatedAt time.Time
	// ExpiresAt and LastUsedAt are zero when unset.
	ExpiresAt  time.Time
	LastUsedAt time.Time
}

// ConfigKeyID is the id of the configured key called name: the same at
// every start, so that its operations stay its own.
func ConfigKeyID(name string) string {
	sum := sha256.Sum256([]byte("config\x00" + name))
	return "cfg" + hex.EncodeToString(sum[:])[:13]
}

// SyncConfigAPIKeys makes the keys that came from the configuration file
// exactly keys: new ones are added, changed ones updated, and config keys no
// longer configured removed. A managed key with a configured key's name is
// replaced by it. Other managed keys are left alone.
func (s *Store) SyncConfigAPIKeys(ctx context.Context, keys []APIKey) error {
	// Replicas starting together sync the same keys: one at a time.
	return s.WithLock(ctx, "config-api-keys", func(ctx context.Context) error {
		return s.syncConfigAPIKeys(ctx, keys)
	})
}

func (s *Store) syncConfigAPIKeys(ctx context.Context, keys []APIKey) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixMicro()
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE source = 'config'`); err != nil {
			return fmt.Errorf("removing configured API keys: %w", err)
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE name = $1 OR hash = $2`, k.Name, k.Hash); err != nil {
				return fmt.Errorf("replacing API key %q: %w", k.Name, err)
			}
			k.ID, k.Source, k.CreatedBy = ConfigKeyID(k.Name), KeySourceConfig, "config"
			if err := insertAPIKey(ctx, tx, k, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// InsertAPIKey stores a new key; a key with the same name (or hash) exists
// already is ErrExists.
func (s *Store) InsertAPIKey(ctx context.Context, k APIKey) error {
	now := micros(k.CreatedAt)
	if now == 0 {
		now = time.Now().UnixMicro()
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE name = $1 OR hash = $2 OR id = $3`,
			k.Name, k.Hash, k.ID).Scan(&n); err != nil {
			return fmt.Errorf("checking API key %q: %w", k.Name, err)
		}
		if n > 0 {
			return ErrExists
		}
		return insertAPIKey(ctx, tx, k, now)
	})
}

func insertAPIKey(ctx context.Context, q Querier, k APIKey, now int64) error {
	roles, err := json.Marshal(nonNil(k.Roles))
	if err != nil {
		return fmt.Errorf("encoding roles: %w", err)
	}
	zones, err := json.Marshal(nonNil(k.Zones))
	if err != nil {
		return fmt.Errorf("encoding zones: %w", err)
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO api_keys
		(id, name, hash, roles, zones, source, created_by, created_at, updated_at, expires_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, 0)`,
		k.ID, k.Name, k.Hash, string(roles), string(zones), k.Source, k.CreatedBy, now, micros(k.ExpiresAt)); err != nil {
		return fmt.Errorf("storing API key %q: %w", k.Name, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const apiKeyColumns = `id, name, hash, roles, zones, source, created_by, created_at, expires_at, last_used_at`

func scanAPIKey(row interface{ Scan(...any) error }) (APIKey, error) {
	var (
		k                          APIKey
		roles, zones               string
		created, expires, lastUsed int64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &roles, &zones, &k.Source, &k.CreatedBy, &created, &expires, &lastUsed); err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(roles), &k.Roles); err != nil {
		return k, fmt.Errorf("decoding roles of API key %q: %w", k.Name, err)
	}
	if zones == "[]" {
		// Most keys hold their roles in every zone; every request reads
		// its key, so skip the decoder for them.
		k.Zones = []string{}
	} else if err := json.Unmarshal([]byte(zones), &k.Zones); err != nil {
		return k, fmt.Errorf("decoding zones of API key %q: %w", k.Name, err)
	}
	k.CreatedAt, k.ExpiresAt, k.LastUsedAt = fromMicros(created), fromMicros(expires), fromMicros(lastUsed)
	return k, nil
}

// APIKeys returns every stored API key, ordered by name.
func (s *Store) APIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.readRows(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing API keys: %w", err)
	}
	defer rows.Close()
	out := []APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("listing API keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing API keys: %w", err)
	}
	return out, nil
}

// APIKeyByHash returns the key whose hex SHA-256 is hash, or ErrNotFound.
// It reads the database every time: a key revoked by any process is gone
// for the next request.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (APIKey, error) {
	k, err := scanAPIKey(s.lookupRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("looking up API key: %w", err)
	}
	return k, nil
}

// APIKey returns the key with id, or else the one named ref, or ErrNotFound.
func (s *Store) APIKey(ctx context.Context, ref string) (APIKey, error) {
	k, err := scanAPIKey(s.readRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE id = $1 OR name = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1`, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("reading API key %q: %w", ref, err)
	}
	return k, nil
}

// DeleteAPIKey removes the key with id, or returns ErrNotFound.
func (s *Store) DeleteAPIKey(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_keys WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("deleting API key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// TouchAPIKey records the key's last use, unless a later one is recorded.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1`,
		micros(at), id); err != nil {
		return fmt.Errorf("recording use of API key %s: %w", id, err)
	}
	return nil
}
