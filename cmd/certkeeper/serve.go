package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, logger, err := loadServiceConfig("serve", args, stderr)
	if err != nil {
		return err
	}
	if err := startPprof(ctx, logger); err != nil {
		return err
	}
	return runService(ctx, cfg, logger, nil)
}

// runService reads what the service needs from files — the master key and
// the CA bundle — and runs it until ctx is done. ready, when not nil, is
// called with the API's address once it accepts connections.
func runService(ctx context.Context, cfg *config.Config, logger *slog.Logger, ready func(addr string)) error {
	key, err := masterKey(cfg, logger)
	if err != nil {
		return err
	}
	var bundle []byte
	if cfg.ACME.CABundle != "" {
		if bundle, err = os.ReadFile(cfg.ACME.CABundle); err != nil {
			return fmt.Errorf("reading acme.caBundle: %w", err)
		}
	}
	bundles, err := caBundles(cfg)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, app.Options{Config: cfg, MasterKey: key, CABundle: bundle, CABundles: bundles, Version: version, Logger: logger})
	if err != nil {
		return err
	}
	if ready != nil {
		ready(a.Addr().String())
	}
	return a.Run(ctx)
}

// masterKey returns the configured master key, or the one in the key file,
// creating the file (mode 0600) with a new key on first start.
func masterKey(cfg *config.Config, logger *slog.Logger) (*secret.Key, error) {
	if cfg.MasterKey != "" {
		k, err := secret.ParseKey(cfg.MasterKey.Reveal())
		if err != nil {
			return nil, fmt.Errorf("reading masterKey: %w", err)
		}
		return k, nil
	}
	path := cfg.MasterKeyFile
	data, err := os.ReadFile(path)
	if err == nil {
		if info, statErr := os.Stat(path); statErr == nil && info.Mode().Perm()&0o077 != 0 {
			logger.Warn("the master key file can be read by others; it should have mode 0600", "path", path)
		}
		k, err := secret.ParseKey(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, fmt.Errorf("reading the master key file %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the master key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of the master key file: %w", err)
	}
	k, encoded, err := secret.NewKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the master key file: %w", err)
	}
	if _, err := f.WriteString(encoded + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("writing the master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing the master key file: %w", err)
	}
	logger.Info("created a new master key; back it up: without it stored private keys cannot be read", "path", path)
	return k, nil
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
