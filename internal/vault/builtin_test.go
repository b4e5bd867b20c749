package vault_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
	"github.com/certkeeper/certkeeper/internal/vault"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopPostgres()
	os.Exit(code)
}

const keyPEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"

func TestBuiltin(t *testing.T) {
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
			ver := vault.Version{ID: "0123456789abcdef0123456789abcdef", Name: "www", Spec: certificate.Spec{Name: "www", DNSNames: []string{"www.example.test"}, KeyType: "EC", KeyCurveName: "P-256"},
				ACMEEndpoint: "https://ca/dir", Serial: "1f", Thumbprint: "AB", NotBefore: at, NotAfter: at.Add(time.Hour),
				CertPEM: []byte("CERT"), ChainPEM: []byte("CHAIN"), KeyPEM: []byte(keyPEM), CertURL: "https://ca/cert", CreatedAt: at}
			if err := v.Put(ctx, ver); err != nil {
				t.Fatal(err)
			}
			if err := v.Put(ctx, ver); !errors.Is(err, vault.ErrExists) {
				t.Errorf("second Put of one version = %v, want ErrExists", err)
			}
			got, err := v.Latest(ctx, "www")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ver, got); diff != "" {
				t.Errorf("Latest (-want +got):\n%s", diff)
			}
			list, err := v.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].KeyPEM != nil {
				t.Errorf("List = %+v; want one version without its key", list)
			}
			if _, err := v.Latest(ctx, "nope"); !errors.Is(err, vault.ErrNotFound) {
				t.Errorf("Latest(nope) = %v, want ErrNotFound", err)
			}
			if err := v.MarkRevoked(ctx, ver.ID, at); err != nil {
				t.Fatal(err)
			}
			if got, _ := v.Latest(ctx, "www"); got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
				t.Errorf("RevokedAt = %v", got.RevokedAt)
			}

			// At rest, the key is sealed: the raw column holds neither the PEM
			// nor its body, and another master key cannot open it.
			var sealed string
			if err := st.DB().QueryRowContext(ctx, `SELECT key_sealed FROM certificate_versions WHERE id = $1`, ver.ID).Scan(&sealed); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(sealed, "PRIVATE KEY") || strings.Contains(sealed, "MIGHAgEAMBMG") {
				t.Errorf("private key stored in the clear: %q", sealed)
			}
			other, _, _ := secret.NewKey()
			if _, err := vault.NewBuiltin(st, other).Latest(ctx, "www"); !errors.Is(err, secret.ErrOpen) {
				t.Errorf("Latest with another master key = %v, want secret.ErrOpen", err)
			}
			if db == "sqlite" {
				raw, err := os.ReadFile(dsn)
				if err != nil {
					t.Fatal(err)
				}
				wal, _ := os.ReadFile(dsn + "-wal")
				if bytes.Contains(raw, []byte("MIGHAgEAMBMG")) || bytes.Contains(wal, []byte("MIGHAgEAMBMG")) {
					t.Error("the SQLite file holds the private key in the clear")
				}
			}
		})
	}
}

// TestBuiltinPutMany checks that PutMany stores every version as Put does,
// readable with its key, and stores none when one of them exists already.
func TestBuiltinPutMany(t *testing.T) {
	t.Parallel()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "certkeeper.db"), slog.New(slog.DiscardHandler))
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
	mk := func(id, name string) vault.Version {
		return vault.Version{ID: id, Name: name, Spec: certificate.Spec{Name: name, DNSNames: []string{name + ".example.test"}, KeyType: "EC", KeyCurveName: "P-256"},
			ACMEEndpoint: "https://ca/dir", Serial: "1f", Thumbprint: "AB", NotBefore: at, NotAfter: at.Add(time.Hour),
			CertPEM: []byte("CERT"), ChainPEM: []byte("CHAIN"), KeyPEM: []byte(keyPEM), CertURL: "https://ca/cert", CreatedAt: at}
	}
	batch := []vault.Version{mk("00000000000000000000000000000001", "a"), mk("00000000000000000000000000000002", "b")}
	if err := v.PutMany(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, want := range batch {
		got, err := v.Latest(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Latest(%s) (-want +got):\n%s", want.Name, diff)
		}
	}
	again := []vault.Version{mk("00000000000000000000000000000003", "c"), batch[0]}
	if err := v.PutMany(ctx, again); !errors.Is(err, vault.ErrExists) {
		t.Errorf("PutMany with a stored version = %v, want ErrExists", err)
	}
	if _, err := v.Latest(ctx, "c"); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("Latest(c) after a failed PutMany = %v, want ErrNotFound (all or none)", err)
	}
}
