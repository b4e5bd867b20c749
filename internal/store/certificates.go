package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
)

// Version is one stored certificate version as the database holds it: the
// private key is sealed with the master key, never in the clear.
type Version struct {
	ID           string
	Name         string
	Spec         certificate.Spec
	ACMEEndpoint string
	CAName       string // the configured name of the issuing CA
	Serial       string
	Thumbprint   string
	NotBefore    time.Time
	NotAfter     time.Time
	CertPEM      string
	ChainPEM     string
	KeySealed    string
	CertURL      string
	CreatedAt    time.Time
	RevokedAt    time.Time // zero when not revoked
	// AccountURI is the ACME account that issued the version; Replaces is
	// the ARI certificate id (RFC 9773) of the certificate it replaced, when
	// the CA accepted the order as a replacement.
	AccountURI string
	Replaces   string
}

// InsertVersion stores v and makes its spec the certificate's current one,
// creating the certificate on its first version. It is all or nothing, and
// inserting a version id that exists already changes nothing (ErrExists).
func (s *Store) InsertVersion(ctx context.Context, v Version) error {
	return s.Tx(ctx, func(tx *sql.Tx) error { return insertVersion(ctx, tx, v) })
}

// InsertVersions stores every version of vs as InsertVersion does, in one
// transaction: all of them or none. A version id that exists already is
// ErrExists and nothing is stored. It is for bulk loads (an import, the
// benchmark's seeding); the service stores one version at a time.
func (s *Store) InsertVersions(ctx context.Context, vs []Version) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		for _, v := range vs {
			if err := insertVersion(ctx, tx, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertVersion(ctx context.Context, tx *sql.Tx, v Version) error {
	spec, err := json.Marshal(v.Spec)
	if err != nil {
		return fmt.Errorf("encoding spec: %w", err)
	}
	var exists int
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM certificate_versions WHERE id = $1`, v.ID).Scan(&exists)
	if err != nil {
		return fmt.Errorf("checking version %s: %w", v.ID, err)
	}
	if exists > 0 {
		return ErrExists
	}
	now := micros(v.CreatedAt)
	if _, err := tx.ExecContext(ctx, `INSERT INTO certificates (name, spec, acme_endpoint, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, acme_endpoint = excluded.acme_endpoint,
			updated_at = excluded.updated_at`,
		v.Name, string(spec), v.ACMEEndpoint, now); err != nil {
		return fmt.Errorf("writing certificate %s: %w", v.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO certificate_versions
		(id, certificate_name, spec, acme_endpoint, serial, thumbprint, not_before, not_after,
		 cert_pem, chain_pem, key_sealed, cert_url, created_at, revoked_at, ca_name, account_uri, replaces)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		v.ID, v.Name, string(spec), v.ACMEEndpoint, v.Serial, v.Thumbprint, micros(v.NotBefore),
		micros(v.NotAfter), v.CertPEM, v.ChainPEM, v.KeySealed, v.CertURL, now, micros(v.RevokedAt), v.CAName,
		v.AccountURI, v.Replaces); err != nil {
		return fmt.Errorf("writing version %s of %s: %w", v.ID, v.Name, err)
	}
	// Every stored certificate has a renewal schedule, or the scheduler,
	// which reads schedules only, would never renew it: a certificate stored
	// without one (imported from Key Vault Acmebot) gets one due at once.
	// The end of an issuance writes the real schedule over it; a schedule
	// that exists (a renewal in flight) is left alone.
	if _, err := tx.ExecContext(ctx, `INSERT INTO renewals (certificate_name, next_check_at, updated_at)
		VALUES ($1, 0, $2) ON CONFLICT (certificate_name) DO NOTHING`, v.Name, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("scheduling the renewal of %s: %w", v.Name, err)
	}
	return nil
}

// ErrExists is returned when a row with the same key exists already.
var ErrExists = errors.New("already exists")

const versionColumns = `id, certificate_name, spec, acme_endpoint, serial, thumbprint, not_before, not_after,
	cert_pem, chain_pem, key_sealed, cert_url, created_at, revoked_at, ca_name, account_uri, replaces`

func scanVersion(row interface{ Scan(...any) error }) (Version, error) {
	var (
		v                                     Version
		spec                                  string
		notBefore, notAfter, created, revoked int64
	)
	if err := row.Scan(&v.ID, &v.Name, &spec, &v.ACMEEndpoint, &v.Serial, &v.Thumbprint, &notBefore, &notAfter,
		&v.CertPEM, &v.ChainPEM, &v.KeySealed, &v.CertURL, &created, &revoked, &v.CAName, &v.AccountURI, &v.Replaces); err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(spec), &v.Spec); err != nil {
		return v, fmt.Errorf("decoding spec of version %s: %w", v.ID, err)
	}
	v.NotBefore, v.NotAfter = fromMicros(notBefore), fromMicros(notAfter)
	v.CreatedAt, v.RevokedAt = fromMicros(created), fromMicros(revoked)
	return v, nil
}

// VersionByID returns the version with id, or ErrNotFound.
func (s *Store) VersionByID(ctx context.Context, id string) (Version, error) {
	row := s.read.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM certificate_versions WHERE id = $1`, id)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, ErrNotFound
	}
	if err != nil {
		return Version{}, fmt.Errorf("reading version %s: %w", id, err)
	}
	return v, nil
}

// LatestVersion returns the newest version of the named certificate, or
// ErrNotFound.
func (s *Store) LatestVersion(ctx context.Context, name string) (Version, error) {
	row := s.read.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM certificate_versions
		WHERE certificate_name = $1 ORDER BY created_at DESC, id DESC LIMIT 1`, name)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, ErrNotFound
	}
	if err != nil {
		return Version{}, fmt.Errorf("reading newest version of %s: %w", name, err)
	}
	return v, nil
}

// listColumns are versionColumns without the PEM data and the sealed key,
// which a listing does not show: they are most of a row's bytes.
const listColumns = `v.id, v.certificate_name, v.spec, v.acme_endpoint, v.serial, v.thumbprint, v.not_before, v.not_after,
	v.cert_url, v.created_at, v.revoked_at, v.ca_name, v.account_uri, v.replaces`

// LatestVersions returns the newest version of every certificate, ordered by
// name, without CertPEM, ChainPEM and KeySealed (VersionByID and
// LatestVersion have them). It walks the certificates, one index lookup
// each for the newest version, and reads none of the older versions' rows.
func (s *Store) LatestVersions(ctx context.Context) ([]Version, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+listColumns+` FROM certificates c
		JOIN certificate_versions v ON v.id = (SELECT w.id FROM certificate_versions w WHERE w.certificate_name = c.name
			ORDER BY w.created_at DESC, w.id DESC LIMIT 1)
		ORDER BY c.name`)
	if err != nil {
		return nil, fmt.Errorf("listing certificates: %w", err)
	}
	defer rows.Close()
	out := []Version{}
	var (
		spec                                  string
		notBefore, notAfter, created, revoked int64
	)
	for rows.Next() {
		var v Version
		if err := rows.Scan(&v.ID, &v.Name, &spec, &v.ACMEEndpoint, &v.Serial, &v.Thumbprint, &notBefore, &notAfter,
			&v.CertURL, &created, &revoked, &v.CAName, &v.AccountURI, &v.Replaces); err != nil {
			return nil, fmt.Errorf("listing certificates: %w", err)
		}
		if err := json.Unmarshal([]byte(spec), &v.Spec); err != nil {
			return nil, fmt.Errorf("decoding spec of version %s: %w", v.ID, err)
		}
		v.NotBefore, v.NotAfter = fromMicros(notBefore), fromMicros(notAfter)
		v.CreatedAt, v.RevokedAt = fromMicros(created), fromMicros(revoked)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing certificates: %w", err)
	}
	return out, nil
}

// CountVersions returns how many versions the named certificate has.
func (s *Store) CountVersions(ctx context.Context, name string) (int, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM certificate_versions WHERE certificate_name = $1`,
		name).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting versions of %s: %w", name, err)
	}
	return n, nil
}

// MarkRevoked records the revocation time of a version, or ErrNotFound.
func (s *Store) MarkRevoked(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE certificate_versions SET revoked_at = $1 WHERE id = $2`, micros(at), id)
	if err != nil {
		return fmt.Errorf("marking version %s revoked: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
