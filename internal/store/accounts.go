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
