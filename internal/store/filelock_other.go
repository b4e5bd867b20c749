//go:build !unix

package store

import "os"

// lockDatabaseFile does nothing on systems without flock: there, keeping to
// one process per SQLite file is the operator's job.
func lockDatabaseFile(string) (*os.File, error) { return nil, nil }
