package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
)

// InsertOperation records a new operation with the spec it works on. q may
// be a transaction that also enqueues the operation's job.
func (s *Store) InsertOperation(ctx context.Context, q Querier, op operation.Operation, spec certificate.Spec) error {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encoding spec: %w", err)
	}
	steps, err := json.Marshal(nonNilSteps(op.Steps))
	if err != nil {
		return fmt.Errorf("encoding steps: %w", err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO operations
		(id, kind, certificate_name, spec, status, steps, created_at, updated_at, created_by, created_by_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		op.ID, string(op.Kind), op.CertificateName, string(specJSON), string(op.Status), string(steps),
		micros(op.CreatedAt), micros(op.UpdatedAt), op.CreatedBy, op.CreatedByName)
	if err != nil {
		return fmt.Errorf("inserting operation %s: %w", op.ID, err)
	}
	return nil
}

func nonNilSteps(s []operation.StepRecord) []operation.StepRecord {
	if s == nil {
		return []operation.StepRecord{}
	}
	return s
}

const operationColumns = `id, kind, certificate_name, status, steps, failed_step, error, version_id, attempt, created_at, updated_at,
	created_by, created_by_name`

// Operation returns the operation with id, or ErrNotFound.
func (s *Store) Operation(ctx context.Context, id string) (operation.Operation, error) {
	row := s.lookupRow(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = $1`, id)
	op, err := scanOperation(row)
	if errors.Is(err, sql.ErrNoRows) {
		return operation.Operation{}, ErrNotFound
	}
	if err != nil {
		return operation.Operation{}, fmt.Errorf("reading operation %s: %w", id, err)
	}
	return op, nil
}

// OperationStatus returns what GET /api/state polls of the operation with
// id — its status, failure and creator — without the steps and
// deliveries Operation also reads (decoding the steps was a tenth of a
// poll's CPU), or ErrNotFound.
func (s *Store) OperationStatus(ctx context.Context, id string) (operation.Operation, error) {
	var (
		op           operation.Operation
		kind, status string
		failedStep   string
	)
	err := s.lookupRow(ctx, `SELECT id, kind, certificate_name, status, failed_step, error, version_id,
		created_by, created_by_name FROM operations WHERE id = $1`, id).Scan(&op.ID, &kind, &op.CertificateName,
		&status, &failedStep, &op.Error, &op.VersionID, &op.CreatedBy, &op.CreatedByName)
	if errors.Is(err, sql.ErrNoRows) {
		return operation.Operation{}, ErrNotFound
	}
	if err != nil {
		return operation.Operation{}, fmt.Errorf("reading the status of operation %s: %w", id, err)
	}
	op.Kind, op.Status, op.FailedStep = operation.Kind(kind), operation.Status(status), operation.Step(failedStep)
	return op, nil
}

func scanOperation(row interface{ Scan(...any) error }) (operation.Operation, error) {
	var (
		op                  operation.Operation
		kind, status, steps string
		failedStep          string
		created, updated    int64
		attempt             int64
	)
	if err := row.Scan(&op.ID, &kind, &op.CertificateName, &status, &steps, &failedStep, &op.Error,
		&op.VersionID, &attempt, &created, &updated, &op.CreatedBy, &op.CreatedByName); err != nil {
		return op, err
	}
	op.Kind, op.Status, op.FailedStep = operation.Kind(kind), operation.Status(status), operation.Step(failedStep)
	op.Attempt = int(attempt)
	op.CreatedAt, op.UpdatedAt = fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(steps), &op.Steps); err != nil {
		return op, fmt.Errorf("decoding steps: %w", err)
	}
	return op, nil
}

// OperationSpec returns the spec an operation works on, or ErrNotFound.
func (s *Store) OperationSpec(ctx context.Context, id string) (certificate.Spec, error) {
	var raw string
	err := s.readRow(ctx, `SELECT spec FROM operations WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return certificate.Spec{}, ErrNotFound
	}
	if err != nil {
		return certificate.Spec{}, fmt.Errorf("reading spec of operation %s: %w", id, err)
	}
	var spec certificate.Spec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return certificate.Spec{}, fmt.Errorf("decoding spec of operation %s: %w", id, err)
	}
	return spec, nil
}

// UpdateOperation writes the operation's status, steps, failure, version and
// attempt, and sets its updated time to now.
func (s *Store) UpdateOperation(ctx context.Context, q Querier, op operation.Operation) error {
	steps, err := json.Marshal(nonNilSteps(op.Steps))
	if err != nil {
		return fmt.Errorf("encoding steps: %w", err)
	}
	res, err := q.ExecContext(ctx, `UPDATE operations SET status = $1, steps = $2, failed_step = $3,
		error = $4, version_id = $5, attempt = $6, updated_at = $7 WHERE id = $8`,
		string(op.Status), string(steps), string(op.FailedStep), op.Error, op.VersionID, op.Attempt,
		time.Now().UnixMicro(), op.ID)
	if err != nil {
		return fmt.Errorf("updating operation %s: %w", op.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetPendingChallenges records (raw JSON) the challenge records an operation
// has presented and not yet removed, so that a process taking the operation
// over after a crash removes them. Empty clears it.
func (s *Store) SetPendingChallenges(ctx context.Context, id string, raw []byte) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE operations SET pending_challenges = $1 WHERE id = $2`, string(raw), id); err != nil {
		return fmt.Errorf("recording pending challenges of operation %s: %w", id, err)
	}
	return nil
}

// PendingChallenges returns what SetPendingChallenges recorded, empty when
// nothing is pending.
func (s *Store) PendingChallenges(ctx context.Context, id string) ([]byte, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT pending_challenges FROM operations WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading pending challenges of operation %s: %w", id, err)
	}
	return []byte(raw), nil
}
