package main

import (
	"os"
	"testing"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestMain stops the PostgreSQL cluster the tests may have started.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopPostgres()
	os.Exit(code)
}
