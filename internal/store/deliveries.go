package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/certkeeper/certkeeper/internal/operation"
)

// EnsureDeliveries records a pending delivery of versionID to each of dests
// for the operation; deliveries recorded already are left as they are.
func (s *Store) EnsureDeliveries(ctx context.Context, opID, certName, versionID string, dests []string) error {
	now := time.Now().UnixMicro()
	return s.Tx(ctx, func(tx *sql.Tx) error {
		for _, d := range dests {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries
				(operation_id, destination, certificate_name, version_id, status, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (operation_id, destination) DO NOTHING`,
				opID, d, certName, versionID, string(operation.DeliveryPending), now); err != nil {
				return fmt.Errorf("recording the delivery of %s to %s: %w", certName, d, err)
			}
		}
		return nil
	})
}

const deliveryColumns = `operation_id, destination, certificate_name, version_id, status, attempts, error, receipt,
	created_at, updated_at, delivered_at, next_attempt_at`

func scanDelivery(row interface{ Scan(...any) error }) (operation.Delivery, error) {
	var (
		d                                      operation.Delivery
		status, receipt                        string
		attempts, created, updated, dlv, nextA int64
	)
	if err := row.Scan(&d.OperationID, &d.Destination, &d.CertificateName, &d.VersionID, &status, &attempts,
		&d.Error, &receipt, &created, &updated, &dlv, &nextA); err != nil {
		return d, err
	}
	d.Status, d.Attempts = operation.DeliveryStatus(status), int(attempts)
	if receipt != "" {
		d.Receipt = []byte(receipt)
	}
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	d.DeliveredAt, d.NextAttemptAt = fromMicros(dlv), fromMicros(nextA)
	return d, nil
}

// Deliveries returns the deliveries of an operation, ordered by destination.
func (s *Store) Deliveries(ctx context.Context, opID string) ([]operation.Delivery, error) {
	rows, err := s.readRows(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE operation_id = $1
		ORDER BY destination`, opID)
	if err != nil {
		return nil, fmt.Errorf("reading the deliveries of operation %s: %w", opID, err)
	}
	defer rows.Close()
	var out []operation.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("reading the deliveries of operation %s: %w", opID, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Delivery returns one delivery, or ErrNotFound.
func (s *Store) Delivery(ctx context.Context, opID, dest string) (operation.Delivery, error) {
	d, err := scanDelivery(s.readRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE operation_id = $1 AND destination = $2`, opID, dest))
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("reading the delivery of operation %s to %s: %w", opID, dest, err)
	}
	return d, nil
}

// RecordDelivery writes the outcome of an attempt: the delivery's row, and
// what the destination holds of the certificate. q may be a transaction
// that also enqueues the next attempt.
func (s *Store) RecordDelivery(ctx context.Context, q Querier, d operation.Delivery) error {
	now := time.Now().UnixMicro()
	if _, err := q.ExecContext(ctx, `UPDATE deliveries SET status = $1, attempts = $2, error = $3, receipt = $4,
		updated_at = $5, delivered_at = $6, next_attempt_at = $7 WHERE operation_id = $8 AND destination = $9`,
		string(d.Status), d.Attempts, d.Error, string(d.Receipt), now, micros(d.DeliveredAt),
		micros(d.NextAttemptAt), d.OperationID, d.Destination); err != nil {
		return fmt.Errorf("recording the delivery of %s to %s: %w", d.CertificateName, d.Destination, err)
	}
	var err error
	switch d.Status {
	case operation.DeliveryDelivered:
		_, err = q.ExecContext(ctx, `INSERT INTO certificate_destinations
			(certificate_name, destination, delivered_version_id, delivered_at, last_attempt_at, last_error)
			VALUES ($1, $2, $3, $4, $5, '')
			ON CONFLICT (certificate_name, destination) DO UPDATE SET delivered_version_id = excluded.delivered_version_id,
				delivered_at = excluded.delivered_at, last_attempt_at = excluded.last_attempt_at, last_error = ''`,
			d.CertificateName, d.Destination, d.VersionID, micros(d.DeliveredAt), now)
	case operation.DeliverySuperseded:
		// The newer version's own delivery says what is there.
	default:
		_, err = q.ExecContext(ctx, `INSERT INTO certificate_destinations
			(certificate_name, destination, last_attempt_at, last_error) VALUES ($1, $2, $3, $4)
			ON CONFLICT (certificate_name, destination) DO UPDATE SET last_attempt_at = excluded.last_attempt_at,
				last_error = excluded.last_error`,
			d.CertificateName, d.Destination, now, d.Error)
	}
	if err != nil {
		return fmt.Errorf("recording what %s holds of %s: %w", d.Destination, d.CertificateName, err)
	}
	return nil
}

// AcquireDeliveryLease takes the lease on writing certName to dest for
// owner until the given time, and reports whether it got it: another
// owner's lease that has not run out keeps it.
func (s *Store) AcquireDeliveryLease(ctx context.Context, certName, dest, owner string, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO certificate_destinations
		(certificate_name, destination, lease_owner, lease_until) VALUES ($1, $2, $3, $4)
		ON CONFLICT (certificate_name, destination) DO UPDATE SET lease_owner = excluded.lease_owner,
			lease_until = excluded.lease_until
		WHERE certificate_destinations.lease_until < $5 OR certificate_destinations.lease_owner = excluded.lease_owner`,
		certName, dest, owner, micros(until), time.Now().UnixMicro())
	if err != nil {
		return false, fmt.Errorf("taking the delivery lease of %s at %s: %w", certName, dest, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("taking the delivery lease of %s at %s: %w", certName, dest, err)
	}
	return n > 0, nil
}

// ReleaseDeliveryLease gives back owner's lease.
func (s *Store) ReleaseDeliveryLease(ctx context.Context, certName, dest, owner string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE certificate_destinations SET lease_owner = '', lease_until = 0
		WHERE certificate_name = $1 AND destination = $2 AND lease_owner = $3`, certName, dest, owner); err != nil {
		return fmt.Errorf("releasing the delivery lease of %s at %s: %w", certName, dest, err)
	}
	return nil
}

// SetDelivered records that dest holds versionID of certName, as when a
// certificate is imported from there.
func (s *Store) SetDelivered(ctx context.Context, certName, dest, versionID string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO certificate_destinations
		(certificate_name, destination, delivered_version_id, delivered_at, last_attempt_at) VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (certificate_name, destination) DO UPDATE SET delivered_version_id = excluded.delivered_version_id,
			delivered_at = excluded.delivered_at, last_attempt_at = excluded.last_attempt_at, last_error = ''`,
		certName, dest, versionID, micros(at)); err != nil {
		return fmt.Errorf("recording that %s holds %s: %w", dest, certName, err)
	}
	return nil
}

// DestinationStates returns, per certificate name, what each destination
// holds, ordered by destination.
func (s *Store) DestinationStates(ctx context.Context) (map[string][]operation.DestinationState, error) {
	rows, err := s.readRows(ctx, `SELECT certificate_name, destination, delivered_version_id, delivered_at,
		last_attempt_at, last_error FROM certificate_destinations ORDER BY certificate_name, destination`)
	if err != nil {
		return nil, fmt.Errorf("reading destination states: %w", err)
	}
	defer rows.Close()
	out := map[string][]operation.DestinationState{}
	for rows.Next() {
		var (
			name             string
			st               operation.DestinationState
			delivered, tried int64
		)
		if err := rows.Scan(&name, &st.Destination, &st.DeliveredVersionID, &delivered, &tried, &st.LastError); err != nil {
			return nil, fmt.Errorf("reading destination states: %w", err)
		}
		st.DeliveredAt, st.LastAttemptAt = fromMicros(delivered), fromMicros(tried)
		out[name] = append(out[name], st)
	}
	return out, rows.Err()
}
