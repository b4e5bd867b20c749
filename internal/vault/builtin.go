package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
)

// Builtin is the built-in backend: every version in certkeeper's own
// database, private keys sealed with AES-256-GCM under the master key and
// bound to their version id. It is safe for concurrent use.
type Builtin struct {
	store *store.Store
	key   *secret.Key
}

var _ Vault = (*Builtin)(nil)

// NewBuiltin returns the built-in vault over st, sealing keys with key.
func NewBuiltin(st *store.Store, key *secret.Key) *Builtin {
	return &Builtin{store: st, key: key}
}

// Put implements Vault. Putting a version id that is stored already is
// ErrExists, and changes nothing.
func (b *Builtin) Put(ctx context.Context, v Version) error {
	row, err := b.sealed(v)
	if err != nil {
		return err
	}
	if err := b.store.InsertVersion(ctx, row); err != nil {
		if errors.Is(err, store.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("storing %s: %w", v.Name, err)
	}
	return nil
}

// PutMany stores every version of vs as Put does, in one transaction: all
// or none (ErrExists when one of them is stored already). It is for bulk
// loads such as the benchmark's seeding.
func (b *Builtin) PutMany(ctx context.Context, vs []Version) error {
	rows := make([]store.Version, len(vs))
	for i, v := range vs {
		row, err := b.sealed(v)
		if err != nil {
			return err
		}
		rows[i] = row
	}
	if err := b.store.InsertVersions(ctx, rows); err != nil {
		if errors.Is(err, store.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("storing %d versions: %w", len(vs), err)
	}
	return nil
}

// sealed is the database row of v, its private key sealed under the master
// key and bound to the version id.
func (b *Builtin) sealed(v Version) (store.Version, error) {
	sealed, err := b.key.Seal(v.KeyPEM, []byte(v.ID))
	if err != nil {
		return store.Version{}, fmt.Errorf("sealing private key of %s: %w", v.Name, err)
	}
	row := store.Version{
		ID: v.ID, Name: v.Name, Spec: v.Spec, ACMEEndpoint: v.ACMEEndpoint, CAName: v.CA, Serial: v.Serial,
		Thumbprint: v.Thumbprint, NotBefore: v.NotBefore, NotAfter: v.NotAfter,
		CertPEM: string(v.CertPEM), ChainPEM: string(v.ChainPEM), KeySealed: sealed, CertURL: v.CertURL,
		CreatedAt: v.CreatedAt, AccountURI: v.AccountURI, Replaces: v.Replaces,
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = time.Now()
	}
	return row, nil
}

// ErrExists is returned by Put when the version is stored already.
var ErrExists = errors.New("certificate version exists")

// Latest implements Vault.
func (b *Builtin) Latest(ctx context.Context, name string) (Version, error) {
	row, err := b.store.LatestVersion(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Version{}, ErrNotFound
	}
	if err != nil {
		return Version{}, err
	}
	return b.withKey(row)
}

// ByID returns a version with its private key, or ErrNotFound.
func (b *Builtin) ByID(ctx context.Context, id string) (Version, error) {
	row, err := b.store.VersionByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Version{}, ErrNotFound
	}
	if err != nil {
		return Version{}, err
	}
	return b.withKey(row)
}

func (b *Builtin) withKey(row store.Version) (Version, error) {
	v := fromRow(row)
	key, err := b.key.Open(row.KeySealed, []byte(row.ID))
	if err != nil {
		return Version{}, fmt.Errorf("opening private key of %s version %s: %w", row.Name, row.ID, err)
	}
	v.KeyPEM = key
	return v, nil
}

// List implements Vault.
func (b *Builtin) List(ctx context.Context) ([]Version, error) {
	rows, err := b.store.LatestVersions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Version, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, nil
}

// MarkRevoked implements Vault.
func (b *Builtin) MarkRevoked(ctx context.Context, versionID string, at time.Time) error {
	err := b.store.MarkRevoked(ctx, versionID, at)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

func fromRow(r store.Version) Version {
	v := Version{
		ID: r.ID, Name: r.Name, Spec: r.Spec, ACMEEndpoint: r.ACMEEndpoint, CA: r.CAName, Serial: r.Serial,
		Thumbprint: r.Thumbprint, NotBefore: r.NotBefore, NotAfter: r.NotAfter,
		CertPEM: []byte(r.CertPEM), ChainPEM: []byte(r.ChainPEM), CertURL: r.CertURL, CreatedAt: r.CreatedAt,
		AccountURI: r.AccountURI, Replaces: r.Replaces,
	}
	if !r.RevokedAt.IsZero() {
		at := r.RevokedAt
		v.RevokedAt = &at
	}
	return v
}
