// Package store holds certkeeper's database: an embedded SQLite file by
// default or a PostgreSQL server for several replicas, the schema migrations
// both share, and the queries for certificates, their versions, operations,
// ACME accounts and API keys. The SQL is written once for both databases:
// TEXT and BIGINT columns only, $n placeholders, times as Unix microseconds.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrDatabaseInUse is returned by Open when another process already uses the
// SQLite file: SQLite serves one certkeeper process, PostgreSQL several.
var ErrDatabaseInUse = errors.New("the SQLite database is in use")

// Dialect is the kind of database behind a Store.
type Dialect string

// The supported databases.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Querier is what both *sql.DB and *sql.Tx offer; queries that may run
// inside a caller's transaction take one.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store is the database. It is safe for concurrent use.
//
// With SQLite, writes go through a pool of one connection (SQLite allows one
// writer; River shares that pool) and reads through a separate pool of
// read-only connections, which WAL mode lets run beside the writer. With
// PostgreSQL both are the same pool.
type Store struct {
	db   *sql.DB
	read *sql.DB
	// readStmts prepares the read pool's queries once per connection
	// (SQLite only; see stmtCache).
	readStmts *stmtCache
	dialect   Dialect
	logger    *slog.Logger
	// locks are WithLock's locks with SQLite; lockFile holds the SQLite
	// file's exclusive lock while the Store is open.
	locks    localLocks
	lockFile *os.File
}

// IsPostgresURL reports whether dsn names a PostgreSQL server.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database — a postgres:// URL, or else the path of a
// SQLite file, created if missing — and applies pending migrations. A SQLite
// file is locked for this process (<file>.lock) until Close; when another
// process holds it, Open returns an error wrapping ErrDatabaseInUse.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	return open(ctx, dsn, logger, true)
}

// OpenShared is Open without the SQLite file's process lock, for short
// administrative commands (API keys, the audit log) that run beside a
// serving process: SQLite's own locking keeps their few writes safe. It
// must not run jobs.
func OpenShared(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	return open(ctx, dsn, logger, false)
}

func open(ctx context.Context, dsn string, logger *slog.Logger, exclusive bool) (*Store, error) {
	s := &Store{logger: logger.With("component", "store")}
	if IsPostgresURL(dsn) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("opening PostgreSQL: %w", err)
		}
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(10)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.db, s.read, s.dialect = db, db, Postgres
	} else {
		if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
			return nil, fmt.Errorf("creating database directory: %w", err)
		}
		if exclusive {
			lock, err := lockDatabaseFile(dsn)
			if err != nil {
				return nil, err
			}
			s.lockFile = lock
		}
		common := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
		db, err := sql.Open("sqlite", "file:"+dsn+"?"+common+"&_txlock=immediate")
		if err != nil {
			s.unlockFile()
			return nil, fmt.Errorf("opening SQLite %s: %w", dsn, err)
		}
		db.SetMaxOpenConns(1)
		s.db, s.dialect = db, SQLite
		// The writer runs first so that the file exists and is in WAL mode
		// before the read-only pool opens it.
		if err := s.ping(ctx); err != nil {
			db.Close()
			s.unlockFile()
			return nil, err
		}
		read, err := sql.Open("sqlite", "file:"+dsn+"?"+common+"&_pragma=query_only(1)")
		if err != nil {
			db.Close()
			s.unlockFile()
			return nil, fmt.Errorf("opening SQLite %s for reading: %w", dsn, err)
		}
		read.SetMaxOpenConns(8)
		// Keep every reader open: with database/sql's default of 2 idle
		// connections, a burst of API requests closed and reopened SQLite
		// connections (17% of CPU under load, issue 11's profile).
		read.SetMaxIdleConns(8)
		s.read = read
		s.readStmts = newStmtCache(read)
	}
	if err := s.ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("connecting to %s: %w", s.dialect, err)
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("connecting to %s: %w", s.dialect, err)
	}
	return nil
}

// readRow runs a read query on the read pool through its prepared
// statement. query must be a constant: each distinct text is prepared once
// per connection and kept until Close.
func (s *Store) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.readStmts.queryRow(ctx, s.read, query, args...)
}

// lookupRow is readRow for a lookup by primary key or unique index, which
// SQLite answers in microseconds. There it runs without ctx's cancellation:
// for a cancellable ctx, modernc's driver starts a goroutine per query to
// watch it, which cost more than the lookup itself (about half of
// BenchmarkStatePollReads). A ctx already done still fails the call; the
// wait for a free read connection is not cancellable either, and those are
// held for microseconds. PostgreSQL keeps ctx: a query there waits on the
// network.
func (s *Store) lookupRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s.dialect == SQLite && ctx.Err() == nil {
		ctx = context.WithoutCancel(ctx)
	}
	return s.readRow(ctx, query, args...)
}

// readRows is readRow for several rows; the caller closes them.
func (s *Store) readRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.readStmts.query(ctx, s.read, query, args...)
}

// DB is the writer pool, shared with the job queue.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect tells which database this is.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes both pools and releases the SQLite file's lock.
func (s *Store) Close() error {
	err := errors.Join(s.readStmts.Close(), s.db.Close())
	if s.read != s.db && s.read != nil {
		err = errors.Join(err, s.read.Close())
	}
	s.unlockFile()
	return err
}

// unlockFile releases the SQLite file's lock (closing the file drops the
// flock); the lock file itself stays, empty of meaning until the next Open.
func (s *Store) unlockFile() {
	if s.lockFile != nil {
		s.lockFile.Close()
		s.lockFile = nil
	}
}

// Tx runs fn in a transaction, committing when fn returns nil. fn must use
// tx, never the Store's own methods that take no Querier: with SQLite that
// would wait for the one writer connection fn holds.
func (s *Store) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
