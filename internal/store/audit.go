package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuditEntry is one line of the audit log: who did what to which
// certificate, from where, and how it ended.
type AuditEntry struct {
	// ID orders entries by time; AppendAudit sets it.
	ID string
	// At is when it happened; AppendAudit sets it when zero.
	At time.Time
	// ActorKind, ActorID, Actor and ActorIssuer describe who: see
	// auth.Principal.
	ActorKind   string
	ActorID     string
	Actor       string
	ActorIssuer string
	// Action is what, such as "certificate.issue" or "operation.succeeded".
	Action      string
	Certificate string
	Operation   string
	// Address is the caller's network address.
	Address string
	// Result is a word ("accepted", "succeeded", "denied", "failed", …) and
	// Status the HTTP status answered (0 for an operation's outcome).
	Result  string
	Status  int
	Detail  string
	TraceID string
}

// AuditFilter selects audit entries. Empty fields select everything.
type AuditFilter struct {
	Certificate string
	// Actor matches the actor's name or its actor id.
	Actor  string
	Action string
	// Before is the id of the last entry of the previous page.
	Before string
	// Limit is how many entries at most; 0 or less means 100.
	Limit int
}

// newAuditID returns an id that sorts by at: the time in microseconds and a
// random number, each as 16 hex digits.
func newAuditID(at time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return fmt.Sprintf("%016x%016x", uint64(at.UnixMicro()), binary.BigEndian.Uint64(b[:]))
}

// AppendAudit adds e to the audit log and returns it with its id and time.
// The log is append-only: the store has no way to change an entry.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	e.ID = newAuditID(e.At)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO audit_log
		(id, at, actor_kind, actor_id, actor, actor_issuer, action, certificate_name, operation_id, address,
		 result, status, detail, trace_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		e.ID, micros(e.At), e.ActorKind, e.ActorID, e.Actor, e.ActorIssuer, e.Action, e.Certificate, e.Operation,
		e.Address, e.Result, e.Status, e.Detail, e.TraceID); err != nil {
		return e, fmt.Errorf("appending to the audit log: %w", err)
	}
	return e, nil
}

// Audit returns the entries f selects, newest first.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Certificate != "" {
		where = append(where, "certificate_name = "+arg(f.Certificate))
	}
	if f.Actor != "" {
		a := arg(f.Actor)
		where = append(where, "(actor = "+a+" OR actor_id = "+a+")")
	}
	if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if f.Before != "" {
		where = append(where, "id < "+arg(f.Before))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT id, at, actor_kind, actor_id, actor, actor_issuer, action, certificate_name, operation_id,
		address, result, status, detail, trace_id FROM audit_log`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT " + strconv.Itoa(limit)
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var (
			e      AuditEntry
			at     int64
			status int64
		)
		if err := rows.Scan(&e.ID, &at, &e.ActorKind, &e.ActorID, &e.Actor, &e.ActorIssuer, &e.Action, &e.Certificate,
			&e.Operation, &e.Address, &e.Result, &status, &e.Detail, &e.TraceID); err != nil {
			return nil, fmt.Errorf("reading the audit log: %w", err)
		}
		e.At, e.Status = fromMicros(at), int(status)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	return out, nil
}
