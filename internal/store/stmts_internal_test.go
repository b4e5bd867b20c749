package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
)

func openSQLite(t *testing.T) *Store {
	t.Helper()
	st, err := Open(t.Context(), filepath.Join(t.TempDir(), "certkeeper.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func insertDeliveries(t *testing.T, st *Store, dests ...string) string {
	t.Helper()
	id := operation.NewID()
	if err := st.EnsureDeliveries(t.Context(), id, "stmt-open-rows", "v1", dests); err != nil {
		t.Fatal(err)
	}
	return id
}

// With SQLite the store's reads are prepared once and reused.
func TestSQLiteReadsArePrepared(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	id := insertDeliveries(t, st, "a")
	before := st.readStmts.len()
	for range 5 {
		if _, err := st.Deliveries(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if got := st.readStmts.len(); got != before+1 {
		t.Errorf("the cache holds %d statements after 5 calls of one query, want %d", got, before+1)
	}
}

// A query whose Rows are still open elsewhere runs on another connection:
// the open Rows go on where they were.
func TestPreparedReadWithRowsLeftOpen(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	ctx := t.Context()
	id := insertDeliveries(t, st, "a", "b", "c")
	other := insertDeliveries(t, st, "x", "y")
	const q = `SELECT destination FROM deliveries WHERE operation_id = $1 ORDER BY destination`
	rows, err := st.readRows(ctx, q, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	next := func() {
		t.Helper()
		if !rows.Next() {
			t.Fatalf("rows ended early: %v", rows.Err())
		}
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
	}
	next()
	// The same statement, while the first is mid-way.
	for range 3 {
		inner, err := st.readRows(ctx, q, other)
		if err != nil {
			t.Fatal(err)
		}
		var ds []string
		for inner.Next() {
			var d string
			if err := inner.Scan(&d); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		inner.Close()
		if fmt.Sprint(ds) != "[x y]" {
			t.Fatalf("the second query read %v, want [x y]", ds)
		}
	}
	next()
	next()
	if rows.Next() {
		t.Fatal("rows did not end")
	}
	if fmt.Sprint(got) != "[a b c]" {
		t.Errorf("the first query read %v, want [a b c]", got)
	}
}

// Past maxCachedStatements a query runs unprepared, and still answers.
func TestStatementCacheBound(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	ctx := t.Context()
	for i := range maxCachedStatements + 3 {
		var n int
		if err := st.readRow(ctx, fmt.Sprintf("SELECT %d", i)).Scan(&n); err != nil || n != i {
			t.Fatalf("SELECT %d = %d, %v", i, n, err)
		}
	}
	if got := st.readStmts.len(); got != maxCachedStatements {
		t.Errorf("the cache holds %d statements, want the bound %d", got, maxCachedStatements)
	}
}

// A query SQLite refuses reports its error through the call, and is not
// cached.
func TestPreparedReadError(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	before := st.readStmts.len()
	var n int
	if err := st.readRow(t.Context(), `SELECT nope FROM nowhere`).Scan(&n); err == nil {
		t.Fatal("a query of a missing table succeeded")
	}
	if _, err := st.readRows(t.Context(), `SELECT nope FROM nowhere`); err == nil {
		t.Fatal("a query of a missing table succeeded")
	}
	if got := st.readStmts.len(); got != before {
		t.Errorf("the cache grew from %d to %d on a failing query", before, got)
	}
}

// After Close, reads fail with an error rather than use closed statements.
func TestPreparedReadsAfterClose(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	id := insertDeliveries(t, st, "a")
	if _, err := st.Deliveries(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := st.Deliveries(t.Context(), id); err == nil {
		t.Error("Deliveries after Close succeeded")
	}
}

// The reads of one GET /api/state poll — the caller's key, the operation's
// status — through the prepared statements; the same queries parsed on
// every call (unprepared); and the reads the route made before issue 11,
// the whole operation and its deliveries, unprepared (whole-unprepared).
// All three run the lookups without the context's cancellation
// (Store.lookupRow).
// go test -run '^$' -bench StatePollReads -cpu 1,2 ./internal/store
func BenchmarkStatePollReads(b *testing.B) {
	st, err := Open(b.Context(), filepath.Join(b.TempDir(), "certkeeper.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := b.Context()
	hash := fmt.Sprintf("%064x", 1)
	if err := st.InsertAPIKey(ctx, APIKey{ID: "k1", Name: "bench", Hash: hash, Roles: []string{"Acmebot.Reader"},
		Source: KeySourceManaged, CreatedBy: "bench"}); err != nil {
		b.Fatal(err)
	}
	op := operation.Operation{ID: operation.NewID(), Kind: operation.KindIssue, CertificateName: "bench",
		Status: operation.StatusSucceeded, CreatedBy: "key:k1"}
	if err := st.InsertOperation(ctx, st.DB(), op, certificate.Spec{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	poll := func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := st.APIKeyByHash(ctx, hash); err != nil {
					b.Error(err)
					return
				}
				if _, err := st.OperationStatus(ctx, op.ID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("prepared", poll)
	b.Run("unprepared", func(b *testing.B) {
		cache := st.readStmts
		st.readStmts = nil // a nil cache runs every query unprepared
		defer func() { st.readStmts = cache }()
		poll(b)
	})
	b.Run("whole-unprepared", func(b *testing.B) {
		cache := st.readStmts
		st.readStmts = nil
		defer func() { st.readStmts = cache }()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := st.APIKeyByHash(ctx, hash); err != nil {
					b.Error(err)
					return
				}
				if _, err := st.Operation(ctx, op.ID); err != nil {
					b.Error(err)
					return
				}
				if _, err := st.Deliveries(ctx, op.ID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// A lookup with a context already cancelled fails with the context's error,
// though lookups otherwise run without its cancellation.
func TestLookupWithCancelledContext(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	op := operation.Operation{ID: operation.NewID(), Kind: operation.KindIssue, CertificateName: "c", Status: operation.StatusPending}
	if err := st.InsertOperation(t.Context(), st.DB(), op, certificate.Spec{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OperationStatus(t.Context(), op.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.OperationStatus(ctx, op.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("OperationStatus with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := st.APIKeyByHash(ctx, "00"); !errors.Is(err, context.Canceled) {
		t.Errorf("APIKeyByHash with a cancelled context = %v, want context.Canceled", err)
	}
}
