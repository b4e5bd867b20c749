package vault_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/vaulttest"
)

// TestBuiltinConformance runs the destination suite against the built-in
// store on both databases.
func TestBuiltinConformance(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			vaulttest.Run(t, func(t *testing.T) vault.Destination {
				dsn := filepath.Join(t.TempDir(), "certkeeper.db")
				if db == "postgres" {
					dsn = testenv.PostgresURL(t)
				}
				st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				key, _, err := secret.NewKey()
				if err != nil {
					t.Fatal(err)
				}
				return vault.Deliverer{Builtin: vault.NewBuiltin(st, key)}
			}, vaulttest.Options{KeepsID: true, OrderedWrites: true})
		})
	}
}
