package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"sync"
)

// WithLock runs fn while holding the named lock, which at most one holder in
// the whole deployment has at a time: with PostgreSQL a session-level
// advisory lock (shared by every replica on the database), with SQLite a lock
// of this process (the only one the file admits). It waits for the lock
// until ctx is done. fn must not take the same lock again.
//
// With PostgreSQL the lock holds one pooled connection for as long as fn
// runs; fn uses the Store's other connections as usual.
func (s *Store) WithLock(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	return s.withLock(ctx, lockKey(name), name, fn)
}

// WithMigrationLock runs fn under the lock that also guards the store's own
// migrations, so that schema changes of other parts (the job queue's) happen
// once when replicas start at the same time.
func (s *Store) WithMigrationLock(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.withLock(ctx, migrationLockID, "migrations", fn)
}

// lockKey maps a lock name to a PostgreSQL advisory lock key. The prefix
// keeps certkeeper's keys apart from other users of the same database.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("certkeeper:" + name))
	return int64(h.Sum64()) //nolint:gosec // a key, wrapping is fine
}

func (s *Store) withLock(ctx context.Context, key int64, name string, fn func(ctx context.Context) error) error {
	if s.dialect != Postgres {
		release, err := s.locks.acquire(ctx, key)
		if err != nil {
			return fmt.Errorf("waiting for the %s lock: %w", name, err)
		}
		defer release()
		return fn(ctx)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("getting a connection for the %s lock: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("taking the %s lock: %w", name, err)
	}
	defer unlockAdvisory(ctx, conn, key)
	return fn(ctx)
}

// unlockAdvisory releases a session-level advisory lock. When that fails the
// connection is discarded instead of going back to the pool, which ends the
// session and so the lock.
func unlockAdvisory(ctx context.Context, conn *sql.Conn, key int64) {
	var released bool
	err := conn.QueryRowContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key).Scan(&released)
	if err != nil || !released {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// localLocks are the named locks of one process, for SQLite.
type localLocks struct {
	mu    sync.Mutex
	slots map[int64]chan struct{}
}

// acquire waits for the lock with key until ctx is done and returns its
// release function.
func (l *localLocks) acquire(ctx context.Context, key int64) (func(), error) {
	l.mu.Lock()
	if l.slots == nil {
		l.slots = map[int64]chan struct{}{}
	}
	slot, ok := l.slots[key]
	if !ok {
		slot = make(chan struct{}, 1)
		l.slots[key] = slot
	}
	l.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
