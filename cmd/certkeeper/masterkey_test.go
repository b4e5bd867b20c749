package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/vaulttest"
)

func TestMasterKeyRotate(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			doc := "dataDir: " + dir + "\n"
			dsn := filepath.Join(dir, "certkeeper.db")
			if db == "postgres" {
				dsn = testenv.PostgresURL(t)
				doc += "database: " + dsn + "\n"
			}
			cfgPath := filepath.Join(dir, "certkeeper.yaml")
			if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			oldKey, encoded, _ := secret.NewKey()
			keyFile := filepath.Join(dir, "master.key")
			if err := os.WriteFile(keyFile, []byte(encoded+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			v := vaulttest.NewVersion(t, "www", time.Now().Add(-time.Hour))
			if err := vault.NewBuiltin(st, oldKey).Put(t.Context(), v); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveAccount(t.Context(), store.Account{DirectoryURL: "https://ca/dir", URI: "u",
				KeySealed: mustSeal(t, oldKey, "account key", "https://ca/dir")}); err != nil {
				t.Fatal(err)
			}
			st.Close()

			var out, errOut bytes.Buffer
			if code := run([]string{"masterkey", "rotate", "--config", cfgPath}, &out, &errOut); code != 0 {
				t.Fatalf("masterkey rotate exited %d: %s%s", code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), "resealed 3 values") {
				t.Errorf("output = %q, want 3 values resealed (a key, an account, the check)", out.String())
			}
			if old, _ := os.ReadFile(keyFile + ".old"); string(old) != encoded+"\n" {
				t.Error("the old key is not kept in master.key.old")
			}
			data, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			newKey, err := secret.ParseKey(strings.TrimSpace(string(data)))
			if err != nil || string(data) == encoded+"\n" {
				t.Fatalf("master.key does not hold a new key: %v", err)
			}
			st, err = store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			got, err := vault.NewBuiltin(st, newKey).Latest(t.Context(), "www")
			if err != nil || !bytes.Equal(got.KeyPEM, v.KeyPEM) {
				t.Errorf("the new key does not open the certificate's key: %v", err)
			}
			if _, err := vault.NewBuiltin(st, oldKey).Latest(t.Context(), "www"); !errors.Is(err, secret.ErrOpen) {
				t.Errorf("the old key still opens it: %v", err)
			}
			acct, _ := st.Account(t.Context(), "https://ca/dir")
			if plain, err := newKey.Open(acct.KeySealed, []byte("https://ca/dir")); err != nil || string(plain) != "account key" {
				t.Errorf("the account key does not open with the new key: %v", err)
			}

			// Run with the old key again: refused, nothing changes. The
			// store is closed first: SQLite serves one process at a time.
			st.Close()
			out.Reset()
			if err := os.WriteFile(keyFile, []byte(encoded+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if code := run([]string{"masterkey", "rotate", "--config", cfgPath}, &out, &errOut); code == 0 ||
				!strings.Contains(errOut.String(), "not the one this database") {
				t.Errorf("rotate with a wrong key exited %d: %s", code, errOut.String())
			}
		})
	}
}

func mustSeal(t *testing.T, k *secret.Key, plain, assoc string) string {
	t.Helper()
	s, err := k.Seal([]byte(plain), []byte(assoc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
