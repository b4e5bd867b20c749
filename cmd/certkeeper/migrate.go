package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/job"
	"github.com/certkeeper/certkeeper/internal/store"
)

// migrate runs the database migrations — certkeeper's and the job queue's —
// and exits. serve runs them too, under the same lock; this command lets a
// deployment run them once, ahead of the replicas.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, logger, err := loadServiceConfig("migrate", args, stderr)
	if err != nil {
		return err
	}
	dsn := cfg.Database.Reveal()
	if dsn == "" {
		dsn = cfg.SQLitePath()
	}
	st, err := store.Open(ctx, dsn, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := job.Migrate(ctx, st, logger)
	if err != nil {
		return err
	}
	versions, err := st.Migrations(ctx)
	if err != nil {
		return err
	}
	latest := "none"
	if len(versions) > 0 {
		latest = versions[len(versions)-1]
	}
	fmt.Fprintf(stdout, "the %s database is up to date: schema %s (%d migrations); job queue migrations applied now: %d\n",
		st.Dialect(), latest, len(versions), len(applied))
	return nil
}

// loadServiceConfig parses the flags of a command that takes only --config,
// loads and validates the configuration and builds the logger.
func loadServiceConfig(name string, args []string, stderr io.Writer) (*config.Config, *slog.Logger, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("CERTKEEPER_CONFIG"), "configuration file (YAML); also CERTKEEPER_CONFIG")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, &usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, nil, &usageError{fmt.Errorf("%s takes no arguments, got %q", name, fs.Args())}
	}
	cfg, err := config.Load(*configPath, os.Getenv)
	if err != nil {
		// Load validates: err lists every problem, one per line.
		return nil, nil, &usageError{fmt.Errorf("the configuration has problems:\n  %s",
			strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	logger, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return nil, nil, &usageError{err}
	}
	return cfg, logger, nil
}

// check loads and validates the configuration — including the files its
// …File keys name and the environment — and exits: 0 when certkeeper would
// start with it, 2 with every problem otherwise. It connects to nothing.
func check(_ context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadServiceConfig("check", args, stderr)
	if err != nil {
		return err
	}
	database := "SQLite " + cfg.SQLitePath()
	if cfg.IsPostgres() {
		database = "PostgreSQL"
	}
	fmt.Fprintf(stdout, "the configuration is valid: listen %s, %s, CA %s, %d DNS provider(s), %d API key(s)\n",
		cfg.Listen, database, cfg.ACME.Endpoint, len(cfg.DNS.Providers), len(cfg.Auth.APIKeys))
	return nil
}
