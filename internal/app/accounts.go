package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
)

// accountStore keeps ACME accounts in the database, their keys sealed with
// the master key and bound to the directory URL.
type accountStore struct {
	store *store.Store
	key   *secret.Key
}

var (
	_ issuer.AccountStore  = (*accountStore)(nil)
	_ issuer.AccountLocker = (*accountStore)(nil)
)

// LockAccount implements issuer.AccountLocker with the database's lock, which
// every replica on a PostgreSQL database shares.
func (a *accountStore) LockAccount(ctx context.Context, directoryURL string, fn func(ctx context.Context) error) error {
	return a.store.WithLock(ctx, "acme-account "+directoryURL, fn)
}

func (a *accountStore) Account(ctx context.Context, directoryURL string) (issuer.Account, error) {
	row, err := a.store.Account(ctx, directoryURL)
	if errors.Is(err, store.ErrNotFound) {
		return issuer.Account{}, issuer.ErrNoAccount
	}
	if err != nil {
		return issuer.Account{}, err
	}
	keyPEM, err := a.key.Open(row.KeySealed, []byte(directoryURL))
	if err != nil {
		return issuer.Account{}, fmt.Errorf("opening the ACME account key for %s: %w", directoryURL, err)
	}
	key, err := issuer.ParseKeyPEM(keyPEM)
	if err != nil {
		return issuer.Account{}, fmt.Errorf("reading the ACME account key for %s: %w", directoryURL, err)
	}
	return issuer.Account{DirectoryURL: row.DirectoryURL, URI: row.URI, Key: key, Contacts: row.Contacts}, nil
}

func (a *accountStore) SaveAccount(ctx context.Context, acct issuer.Account) error {
	keyPEM, err := issuer.MarshalKeyPEM(acct.Key)
	if err != nil {
		return fmt.Errorf("encoding the ACME account key: %w", err)
	}
	sealed, err := a.key.Seal(keyPEM, []byte(acct.DirectoryURL))
	if err != nil {
		return fmt.Errorf("sealing the ACME account key: %w", err)
	}
	return a.store.SaveAccount(ctx, store.Account{
		DirectoryURL: acct.DirectoryURL, URI: acct.URI, KeySealed: sealed, Contacts: acct.Contacts,
	})
}
