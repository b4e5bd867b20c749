package store

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err is the database being out of reach for a
// while rather than refusing a statement: a PostgreSQL server shutting
// down, restarting or recovering from a crash (SQLSTATE class 08, 57P01–
// 57P03), a connection refused or lost, or a statement that was never sent.
// A caller whose write failed so can try again once the server is back;
// any other error (a constraint, a full disk) would fail again.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return strings.HasPrefix(pgErr.Code, "08") ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if pgconn.SafeToRetry(err) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true
	}
	// pgx's own text for a connection it closed after a failure.
	return strings.Contains(err.Error(), "conn closed")
}
