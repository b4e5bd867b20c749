package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedStatements bounds a stmtCache. The store's queries are constant
// strings, a few dozen in all; the bound only keeps a query built at run
// time from growing the cache without end (it then runs unprepared).
const maxCachedStatements = 256

// stmtCache keeps one prepared *sql.Stmt per query text for a pool, so that
// SQLite parses each of the store's read queries once per connection
// rather than on every call: parsing was a quarter to a third of the CPU of
// a GET /api/state poll (issue 11's profile). database/sql prepares a Stmt
// again on each connection it runs on and gives it a connection only while
// no Rows of it are open there, so a statement is never stepped by two
// calls at once; modernc's driver keeps the parsed SQLite statement and
// resets it when its Rows close. SQLite re-parses a statement by itself
// when the schema changes under it.
//
// It is used for reads outside transactions only; a transaction's queries
// run on the caller's *sql.Tx as before. With PostgreSQL, pgx already
// caches prepared statements per connection (and drops one whose result
// type a migration changed, which a *sql.Stmt would not), so the Store has
// no stmtCache there and the methods below fall back to the plain pool.
//
// A nil *stmtCache is valid and prepares nothing.
type stmtCache struct {
	db *sql.DB

	stmts sync.Map // query string → *sql.Stmt

	mu     sync.Mutex // serialises preparation and Close
	n      int
	closed bool
}

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db} }

// errStmtCacheUnavailable says the query runs unprepared: the cache is
// full or closed.
var errStmtCacheUnavailable = errors.New("statement cache unavailable")

// stmt returns the prepared statement for query, preparing it on first
// use.
func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if c == nil {
		return nil, errStmtCacheUnavailable
	}
	if v, ok := c.stmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.stmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	if c.closed || c.n >= maxCachedStatements {
		return nil, errStmtCacheUnavailable
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts.Store(query, st)
	c.n++
	return st, nil
}

// queryRow runs query through its prepared statement, or unprepared on db
// when it cannot be prepared (the error, if it is the query's, comes back
// from running it).
func (c *stmtCache) queryRow(ctx context.Context, db *sql.DB, query string, args ...any) *sql.Row {
	if st, err := c.stmt(ctx, query); err == nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.QueryRowContext(ctx, query, args...)
}

// query is queryRow for several rows.
func (c *stmtCache) query(ctx context.Context, db *sql.DB, query string, args ...any) (*sql.Rows, error) {
	if st, err := c.stmt(ctx, query); err == nil {
		return st.QueryContext(ctx, args...)
	}
	return db.QueryContext(ctx, query, args...)
}

// len is the number of statements prepared.
func (c *stmtCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Close closes every statement; later calls run unprepared.
func (c *stmtCache) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	c.stmts.Range(func(k, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		c.stmts.Delete(k)
		return true
	})
	c.n = 0
	return errors.Join(errs...)
}
