package vault_test

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
	"github.com/certkeeper/certkeeper/internal/vault"
)

func TestBuiltinVersions(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			dsn := filepath.Join(t.TempDir(), "certkeeper.db")
			if db == "postgres" {
				dsn = testenv.PostgresURL(t)
			}
			st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			key, _, err := secret.NewKey()
			if err != nil {
				t.Fatal(err)
			}
			v := vault.NewBuiltin(st, key)
			ctx := t.Context()
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			first := vault.Version{ID: "00000000000000000000000000000001", Name: "www", ACMEEndpoint: "https://ca/dir",
				Serial: "01", Thumbprint: "AA", NotBefore: at, NotAfter: at.Add(time.Hour), CertPEM: []byte("C1"),
				ChainPEM: []byte("CH"), KeyPEM: []byte(keyPEM), CertURL: "https://ca/cert/1", CreatedAt: at}
			second := first
			second.ID, second.Serial, second.Thumbprint, second.CreatedAt = "00000000000000000000000000000002", "02", "BB", at.Add(time.Minute)
			for _, ver := range []vault.Version{first, second} {
				if err := v.Put(ctx, ver); err != nil {
					t.Fatal(err)
				}
			}
			revokedAt := at.Add(2 * time.Minute)
			if err := v.MarkRevoked(ctx, second.ID, revokedAt); err != nil {
				t.Fatal(err)
			}
			got, err := v.Versions(ctx, "www")
			if err != nil {
				t.Fatal(err)
			}
			// Listed versions never carry the private key.
			first.KeyPEM, second.KeyPEM, second.RevokedAt = nil, nil, &revokedAt
			if diff := cmp.Diff([]vault.Version{second, first}, got); diff != "" {
				t.Errorf("Versions (-want +got):\n%s", diff)
			}
			if _, err := v.Versions(ctx, "nope"); !errors.Is(err, vault.ErrNotFound) {
				t.Errorf("Versions(nope) = %v, want ErrNotFound", err)
			}
		})
	}
}
