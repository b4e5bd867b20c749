package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
)

// loadConfigFlags parses --config (and the flags fs already has) and loads
// the configuration.
func loadConfigFlags(fs *flag.FlagSet, args []string, getenv func(string) string) (*config.Config, error) {
	configPath := fs.String("config", getenv("CERTKEEPER_CONFIG"), "configuration file (YAML); also CERTKEEPER_CONFIG")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err}
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		return nil, &usageError{fmt.Errorf("the configuration has problems:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return cfg, nil
}

func openStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	dsn := cfg.Database.Reveal()
	if dsn == "" {
		dsn = cfg.SQLitePath()
	}
	return store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
}

// cmdMasterKey is `certkeeper masterkey rotate`: every sealed value is
// opened with the current master key and sealed again with a new one, in one
// transaction. The new key is written first (to <masterKeyFile>.new, or to
// --new-key-file when the key comes from masterKey / CERTKEEPER_MASTER_KEY),
// so an interrupted rotation is finished by running the command again. Every
// certkeeper process using the database must be stopped first.
func cmdMasterKey(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "rotate" {
		return &usageError{errors.New("usage: certkeeper masterkey rotate [--config FILE] [--new-key-file PATH]")}
	}
	fl := flag.NewFlagSet("masterkey rotate", flag.ContinueOnError)
	fl.SetOutput(stderr)
	newKeyFile := fl.String("new-key-file", "", "where to write the new key (required when the key comes from masterKey or CERTKEEPER_MASTER_KEY)")
	cfg, err := loadConfigFlags(fl, args[1:], getenv)
	if err != nil {
		return err
	}
	inline := cfg.MasterKey != ""
	if inline && *newKeyFile == "" {
		return &usageError{errors.New("the master key comes from masterKey or CERTKEEPER_MASTER_KEY: give --new-key-file to receive the new one")}
	}
	if !inline {
		if _, err := os.Stat(cfg.MasterKeyFile); err != nil {
			return fmt.Errorf("reading the master key file: %w", err)
		}
	}
	oldKey, err := masterKey(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	pending := *newKeyFile
	if pending == "" {
		pending = cfg.MasterKeyFile + ".new"
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	var newKey *secret.Key
	if data, err := os.ReadFile(pending); err == nil {
		if newKey, err = secret.ParseKey(strings.TrimSpace(string(data))); err != nil {
			return fmt.Errorf("reading the new key in %s: %w", pending, err)
		}
		fmt.Fprintf(stdout, "continuing the rotation to the key in %s\n", pending)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", pending, err)
	} else {
		var encoded string
		if newKey, encoded, err = secret.NewKey(); err != nil {
			return err
		}
		if err := writeKeyFile(pending, encoded); err != nil {
			return err
		}
	}

	// The old key goes first: on a database without the check value yet, it
	// is written with the key that sealed everything else.
	if oldErr := app.CheckMasterKey(ctx, st, oldKey); oldErr != nil {
		if app.CheckMasterKey(ctx, st, newKey) != nil {
			return oldErr
		}
		fmt.Fprintln(stdout, "the database is sealed with the new key already")
	} else {
		n, err := st.Reseal(ctx, func(sealed string, assoc []byte) (string, error) {
			plain, err := oldKey.Open(sealed, assoc)
			if err != nil {
				return "", err
			}
			return newKey.Seal(plain, assoc)
		})
		if err != nil {
			return fmt.Errorf("resealing with the new key (nothing changed): %w", err)
		}
		fmt.Fprintf(stdout, "resealed %d values with the new key\n", n)
	}
	if inline {
		fmt.Fprintf(stdout, "set masterKey (or CERTKEEPER_MASTER_KEY) to the contents of %s before starting certkeeper\n", pending)
		return nil
	}
	old := cfg.MasterKeyFile + ".old"
	if err := os.Rename(cfg.MasterKeyFile, old); err != nil {
		return fmt.Errorf("keeping the old key as %s: %w", old, err)
	}
	if err := os.Rename(pending, cfg.MasterKeyFile); err != nil {
		return fmt.Errorf("installing the new key: %w", err)
	}
	fmt.Fprintf(stdout, "the new key is in %s; the old one in %s: update your backups, then delete it\n", cfg.MasterKeyFile, old)
	return nil
}

func writeKeyFile(path, encoded string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing the new key: %w", err)
	}
	_, werr := f.WriteString(encoded + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing the new key: %w", err)
	}
	return nil
}

// cmdImport is `certkeeper import --from-azure-key-vault NAME`.
func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fl := flag.NewFlagSet("import", flag.ContinueOnError)
	fl.SetOutput(stderr)
	from := fl.String("from-azure-key-vault", "", "the azureKeyVault destination whose Acmebot certificates to adopt")
	dryRun := fl.Bool("dry-run", false, "show what would be imported, store nothing")
	cfg, err := loadConfigFlags(fl, args, getenv)
	if err != nil {
		return err
	}
	if *from == "" {
		return &usageError{errors.New("usage: certkeeper import --from-azure-key-vault DESTINATION [--dry-run] [--config FILE]")}
	}
	key, err := masterKey(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	results, err := app.ImportFromAzure(ctx, cfg, st, key, *from, *dryRun, nil)
	for _, r := range results {
		fmt.Fprintf(stdout, "%-10s %s: %s\n", r.Outcome, r.Name, r.Detail)
	}
	if err != nil {
		return err
	}
	if len(results) == 0 {
		fmt.Fprintln(stdout, "no certificate issued by Acmebot in that vault")
	}
	return nil
}
