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

// Renewal is the schedule of one certificate's automatic renewal.
type Renewal struct {
	CertificateName string
	// VersionID is the version the schedule was worked out for; empty until
	// the scheduler first looked at the certificate.
	VersionID string
	// NextCheckAt is when the scheduler looks at the certificate next.
	NextCheckAt time.Time
	// RenewAt is the planned renewal moment; zero when not known yet.
	RenewAt time.Time
	// Source is how RenewAt was chosen: "ari" or "lifetime".
	Source string
	// WindowStart and WindowEnd are the CA's suggested window (ARI), and
	// ExplanationURL the CA's explanation of it.
	WindowStart, WindowEnd time.Time
	ExplanationURL         string
	// ARINextAt is when to ask the CA's renewal information again.
	ARINextAt time.Time
	Status    string
	Message   string
	// Failures counts consecutive failed renewals; RetryAt is when the
	// next attempt may start.
	Failures int
	RetryAt  time.Time
	// OperationID is the renewal operation in flight, if any.
	OperationID   string
	LastCheckedAt time.Time
	// ExpiringNotified is the version the "expiring" event was sent for.
	ExpiringNotified string
	// UpdatedAt is the row's version: SaveRenewal writes only when it is
	// unchanged.
	UpdatedAt int64
}

// ErrConflict is returned when a row changed since it was read.
var ErrConflict = errors.New("changed concurrently")

const renewalColumns = `certificate_name, version_id, next_check_at, renew_at, source, window_start, window_end,
	explanation_url, ari_next_at, status, message, failures, retry_at, operation_id, last_checked_at, expiring_notified, updated_at`

func scanRenewal(row interface{ Scan(...any) error }) (Renewal, error) {
	var (
		r                                                              Renewal
		next, renewAt, ws, we, ariNext, lastChecked, failures, retryAt int64
	)
	if err := row.Scan(&r.CertificateName, &r.VersionID, &next, &renewAt, &r.Source, &ws, &we, &r.ExplanationURL,
		&ariNext, &r.Status, &r.Message, &failures, &retryAt, &r.OperationID, &lastChecked, &r.ExpiringNotified, &r.UpdatedAt); err != nil {
		return r, err
	}
	r.NextCheckAt, r.RenewAt, r.WindowStart, r.WindowEnd = fromMicros(next), fromMicros(renewAt), fromMicros(ws), fromMicros(we)
	r.ARINextAt, r.LastCheckedAt, r.Failures = fromMicros(ariNext), fromMicros(lastChecked), int(failures)
	r.RetryAt = fromMicros(retryAt)
	return r, nil
}

func scanRenewals(rows *sql.Rows, what string) ([]Renewal, error) {
	defer rows.Close()
	out := []Renewal{}
	for rows.Next() {
		r, err := scanRenewal(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// DueRenewals returns at most limit schedules whose NextCheckAt is not after
// now, the most overdue first. It reads the renewals_by_next_check index.
func (s *Store) DueRenewals(ctx context.Context, now time.Time, limit int) ([]Renewal, error) {
	rows, err := s.readRows(ctx, `SELECT `+renewalColumns+` FROM renewals
		WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2`, now.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("listing due renewals: %w", err)
	}
	return scanRenewals(rows, "listing due renewals")
}

// Renewals returns every schedule, ordered by certificate name.
func (s *Store) Renewals(ctx context.Context) ([]Renewal, error) {
	rows, err := s.readRows(ctx, `SELECT `+renewalColumns+` FROM renewals ORDER BY certificate_name`)
	if err != nil {
		return nil, fmt.Errorf("listing renewals: %w", err)
	}
	return scanRenewals(rows, "listing renewals")
}

// RenewalByName returns the schedule of a certificate, or ErrNotFound. q may
// be a transaction.
func (s *Store) RenewalByName(ctx context.Context, q Querier, name string) (Renewal, error) {
	if q == nil {
		q = s.read
	}
	r, err := scanRenewal(q.QueryRowContext(ctx, `SELECT `+renewalColumns+` FROM renewals WHERE certificate_name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Renewal{}, ErrNotFound
	}
	if err != nil {
		return Renewal{}, fmt.Errorf("reading renewal of %s: %w", name, err)
	}
	return r, nil
}

// CountRenewing returns how many certificates have a renewal in flight.
func (s *Store) CountRenewing(ctx context.Context) (int, error) {
	var n int
	if err := s.readRow(ctx, `SELECT COUNT(*) FROM renewals WHERE operation_id <> ''`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting renewals in flight: %w", err)
	}
	return n, nil
}

// nextUpdate returns a row version greater than prev, from the clock.
func nextUpdate(prev int64) int64 { return max(time.Now().UnixMicro(), prev+1) }

// SaveRenewal writes r when its row is still at version r.UpdatedAt, and
// returns the new version; a row changed since it was read is ErrConflict.
// Set OperationID only through ClaimRenewal.
func (s *Store) SaveRenewal(ctx context.Context, r Renewal) (int64, error) {
	updated := nextUpdate(r.UpdatedAt)
	res, err := s.db.ExecContext(ctx, `UPDATE renewals SET version_id = $1, next_check_at = $2, renew_at = $3,
		source = $4, window_start = $5, window_end = $6, explanation_url = $7, ari_next_at = $8, status = $9,
		message = $10, failures = $11, last_checked_at = $12, expiring_notified = $13, updated_at = $14
		WHERE certificate_name = $15 AND updated_at = $16`,
		r.VersionID, micros(r.NextCheckAt), micros(r.RenewAt), r.Source, micros(r.WindowStart), micros(r.WindowEnd),
		r.ExplanationURL, micros(r.ARINextAt), r.Status, r.Message, int64(r.Failures), micros(r.LastCheckedAt),
		r.ExpiringNotified, updated, r.CertificateName, r.UpdatedAt)
	if err != nil {
		return 0, fmt.Errorf("saving renewal of %s: %w", r.CertificateName, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, ErrConflict
	}
	return updated, nil
}

// ClaimRenewal records opID as the renewal in flight for name, in tx (which
// also enqueues the operation), when the row still names prevOpID (empty:
// none); else ErrConflict. It creates the row when missing.
func (s *Store) ClaimRenewal(ctx context.Context, tx Querier, name, prevOpID, opID, status string, nextCheck time.Time) error {
	now := nextUpdate(0)
	res, err := tx.ExecContext(ctx, `UPDATE renewals SET operation_id = $1, status = $2, next_check_at = $3,
		updated_at = $4 WHERE certificate_name = $5 AND operation_id = $6`,
		opID, status, micros(nextCheck), now, name, prevOpID)
	if err != nil {
		return fmt.Errorf("recording the renewal of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	if prevOpID != "" {
		return ErrConflict
	}
	res, err = tx.ExecContext(ctx, `INSERT INTO renewals (certificate_name, next_check_at, status, operation_id, updated_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (certificate_name) DO NOTHING`,
		name, micros(nextCheck), status, opID, now)
	if err != nil {
		return fmt.Errorf("recording the renewal of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrConflict
	}
	return nil
}

// RenewalSucceeded records, in tx, that operation opID stored versionID of
// name: the schedule starts again from that version, with renewAt as the
// planned renewal until the scheduler asked the CA, and the scheduler looks
// at it at nextCheck. The operation in flight is cleared only when it is opID.
func (s *Store) RenewalSucceeded(ctx context.Context, tx Querier, name, opID, versionID string, renewAt, nextCheck time.Time, status, message string) error {
	now := nextUpdate(0)
	_, err := tx.ExecContext(ctx, `INSERT INTO renewals (certificate_name, version_id, next_check_at, renew_at, source,
			status, message, failures, operation_id, updated_at)
		VALUES ($1, $2, $3, $4, 'lifetime', $5, $6, 0, '', $7)
		ON CONFLICT (certificate_name) DO UPDATE SET version_id = excluded.version_id,
			next_check_at = excluded.next_check_at, renew_at = excluded.renew_at, source = excluded.source,
			window_start = 0, window_end = 0, explanation_url = '', ari_next_at = 0,
			status = excluded.status, message = excluded.message, failures = 0, retry_at = 0,
			operation_id = CASE WHEN renewals.operation_id = $8 THEN '' ELSE renewals.operation_id END,
			updated_at = excluded.updated_at`,
		name, versionID, micros(nextCheck), micros(renewAt), status, message, now, opID)
	if err != nil {
		return fmt.Errorf("rescheduling the renewal of %s: %w", name, err)
	}
	return nil
}

// RenewalFailed records, in tx, that renewal operation opID of name failed:
// one more consecutive failure, the given status and message, and the next
// attempt at nextCheck. It returns the number of consecutive failures. A row
// whose operation in flight is another one is left alone (0, nil).
func (s *Store) RenewalFailed(ctx context.Context, tx Querier, name, opID string, nextCheck func(failures int) (time.Time, string), message string) (int, error) {
	var failures int64
	err := tx.QueryRowContext(ctx, `SELECT failures FROM renewals WHERE certificate_name = $1 AND operation_id = $2`,
		name, opID).Scan(&failures)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the renewal of %s: %w", name, err)
	}
	failures++
	at, status := nextCheck(int(failures))
	if _, err := tx.ExecContext(ctx, `UPDATE renewals SET failures = $1, next_check_at = $2, retry_at = $2, status = $3,
		message = $4, operation_id = '', updated_at = $5 WHERE certificate_name = $6 AND operation_id = $7`,
		failures, micros(at), status, message, nextUpdate(0), name, opID); err != nil {
		return 0, fmt.Errorf("recording the failed renewal of %s: %w", name, err)
	}
	return int(failures), nil
}

// CertificateGauge is what the metrics of one certificate show: its newest
// version and its planned renewal.
type CertificateGauge struct {
	Name         string
	Provider     string
	ACMEEndpoint string
	NotBefore    time.Time
	NotAfter     time.Time
	Revoked      bool
	RenewAt      time.Time
	Status       string
}

// CertificateGauges returns one CertificateGauge per certificate, ordered by
// name.
func (s *Store) CertificateGauges(ctx context.Context) ([]CertificateGauge, error) {
	rows, err := s.readRows(ctx, `SELECT c.name, v.spec, v.acme_endpoint, v.not_before, v.not_after, v.revoked_at,
			COALESCE(r.renew_at, 0), COALESCE(r.status, '')
		FROM certificates c
		JOIN certificate_versions v ON v.id = (SELECT w.id FROM certificate_versions w WHERE w.certificate_name = c.name
			ORDER BY w.created_at DESC, w.id DESC LIMIT 1)
		LEFT JOIN renewals r ON r.certificate_name = c.name
		ORDER BY c.name`)
	if err != nil {
		return nil, fmt.Errorf("reading certificate metrics: %w", err)
	}
	defer rows.Close()
	var out []CertificateGauge
	for rows.Next() {
		var (
			g                                     CertificateGauge
			spec                                  string
			notBefore, notAfter, revoked, renewAt int64
		)
		if err := rows.Scan(&g.Name, &spec, &g.ACMEEndpoint, &notBefore, &notAfter, &revoked, &renewAt, &g.Status); err != nil {
			return nil, fmt.Errorf("reading certificate metrics: %w", err)
		}
		var sp certificate.Spec
		if err := json.Unmarshal([]byte(spec), &sp); err == nil {
			g.Provider = sp.DNSProviderName
		}
		g.NotBefore, g.NotAfter, g.Revoked, g.RenewAt = fromMicros(notBefore), fromMicros(notAfter), revoked != 0, fromMicros(renewAt)
		out = append(out, g)
	}
	return out, rows.Err()
}
