package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/certkeeper/certkeeper/internal/operation"
)

// Versions returns every version of the named certificate, newest first,
// or ErrNotFound when it has none.
func (s *Store) Versions(ctx context.Context, name string) ([]Version, error) {
	rows, err := s.readRows(ctx, `SELECT `+versionColumns+` FROM certificate_versions
		WHERE certificate_name = $1 ORDER BY created_at DESC, id DESC`, name)
	if err != nil {
		return nil, fmt.Errorf("listing versions of %s: %w", name, err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("listing versions of %s: %w", name, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing versions of %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// MaxOperations is the most operations Operations returns at once.
const MaxOperations = 500

// OperationFilter selects operations. The zero value selects the newest
// MaxOperations operations of every certificate.
type OperationFilter struct {
	// CertificateName keeps the operations of one certificate; empty keeps
	// every certificate's.
	CertificateName string
	// Statuses keeps operations in one of these statuses; empty keeps all.
	Statuses []operation.Status
	// Limit is the most operations returned; zero, negative or more than
	// MaxOperations means MaxOperations.
	Limit int
}

// Operations returns the operations f selects, newest first. With a
// certificate name the operations_by_certificate index serves the query,
// with statuses operations_by_status.
func (s *Store) Operations(ctx context.Context, f OperationFilter) ([]operation.Operation, error) {
	var (
		where []string
		args  []any
	)
	if f.CertificateName != "" {
		args = append(args, f.CertificateName)
		where = append(where, fmt.Sprintf("certificate_name = $%d", len(args)))
	}
	if len(f.Statuses) > 0 {
		marks := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			args = append(args, string(st))
			marks[i] = fmt.Sprintf("$%d", len(args))
		}
		where = append(where, "status IN ("+strings.Join(marks, ", ")+")")
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxOperations {
		limit = MaxOperations
	}
	args = append(args, limit)
	query := `SELECT ` + operationColumns + ` FROM operations`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing operations: %w", err)
	}
	defer rows.Close()
	out := []operation.Operation{}
	for rows.Next() {
		op, err := scanOperation(rows)
		if err != nil {
			return nil, fmt.Errorf("listing operations: %w", err)
		}
		out = append(out, op)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing operations: %w", err)
	}
	return out, nil
}
