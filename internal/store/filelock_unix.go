//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockDatabaseFile takes an exclusive lock on <dbPath>.lock, which the
// kernel releases when the process ends however it ends. A second process
// on the same SQLite file gets ErrDatabaseInUse.
func lockDatabaseFile(dbPath string) (*os.File, error) {
	path := dbPath + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = " (pid " + pid + ")"
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another certkeeper process%s holds %s; SQLite serves one process only: stop the other one, or use PostgreSQL (database: postgres://…) to run several replicas",
				ErrDatabaseInUse, holder, path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// The pid is for people reading the message above; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
