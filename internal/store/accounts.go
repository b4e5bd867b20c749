package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Account is an ACME account as stored: its key sealed with the master key.
type Account struct {
	DirectoryURL string
	URI          string
	KeySealed    string
	Contacts     []string
}

// Account returns the account for a CA directory URL, or ErrNotFound.
func (s *Store) Account(ctx context.Context, directoryURL string) (Account, error) {
	var (
		a        Account
		contacts string
	)
	err := s.db.QueryRowContext(ctx, `SELECT directory_url, uri, key_sealed, contacts FROM acme_accounts
		WHERE directory_url = $1`, directoryURL).Scan(&a.DirectoryURL, &a.URI, &a.KeySealed, &contacts)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	if err != nil {
		return Account{}, fmt.Errorf("reading ACME account for %s: %w", directoryURL, err)
	}
	if err := json.Unmarshal([]byte(contacts), &a.Contacts); err != nil {
		return Account{}, fmt.Errorf("decoding contacts of ACME account for %s: %w", directoryURL, err)
	}
	return a, nil
}

// SaveAccount stores the account, replacing any for its directory URL.
func (s *Store) SaveAccount(ctx context.Context, a Account) error {
	contacts, err := json.Marshal(a.Contacts)
	if err != nil {
		return fmt.Errorf("encoding contacts: %w", err)
	}
	now := time.Now().UnixMicro()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO acme_accounts (directory_url, uri, key_sealed, contacts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (directory_url) DO UPDATE SET uri = excluded.uri, key_sealed = excluded.key_sealed,
			contacts = excluded.contacts, updated_at = excluded.updated_at`,
		a.DirectoryURL, a.URI, a.KeySealed, string(contacts), now); err != nil {
		return fmt.Errorf("saving ACME account for %s: %w", a.DirectoryURL, err)
	}
	return nil
}

// APIKey is an API key as stored: a hex SHA-256 hash, never the key.
type APIKey struct {
	Name   string
	Hash   string
	Roles  []string
	Source string
}

// SyncConfigAPIKeys makes the keys that came from the configuration file
// exactly keys: new ones are added, changed ones updated, and config keys no
// longer configured removed. Keys from other sources are left alone.
func (s *Store) SyncConfigAPIKeys(ctx context.Context, keys []APIKey) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixMicro()
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE source = 'config'`); err != nil {
			return fmt.Errorf("removing configured API keys: %w", err)
		}
		for _, k := range keys {
			roles, err := json.Marshal(k.Roles)
			if err != nil {
				return fmt.Errorf("encoding roles: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (name, hash, roles, source, created_at, updated_at)
				VALUES ($1, $2, $3, 'config', $4, $4)
				ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, roles = excluded.roles,
					source = excluded.source, updated_at = excluded.updated_at`,
				k.Name, k.Hash, string(roles), now); err != nil {
				return fmt.Errorf("storing API key %q: %w", k.Name, err)
			}
		}
		return nil
	})
}

// APIKeys returns every stored API key.
func (s *Store) APIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name, hash, roles, source FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing API keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var (
			k     APIKey
			roles string
		)
		if err := rows.Scan(&k.Name, &k.Hash, &roles, &k.Source); err != nil {
			return nil, fmt.Errorf("listing API keys: %w", err)
		}
		if err := json.Unmarshal([]byte(roles), &k.Roles); err != nil {
			return nil, fmt.Errorf("decoding roles of API key %q: %w", k.Name, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
