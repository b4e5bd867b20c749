package kv_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/kv"
	"github.com/certkeeper/certkeeper/internal/vault/kv/kvtest"
	"github.com/certkeeper/certkeeper/internal/vault/vaulttest"
)

const rootToken = "hvs.root-token-for-tests"

func newKV(t *testing.T, cfg kv.Config) *kv.KV {
	t.Helper()
	k, err := kv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestConformance(t *testing.T) {
	t.Parallel()
	vaulttest.Run(t, func(t *testing.T) vault.Destination {
		srv := kvtest.Start(t, rootToken)
		srv.CASRequired = true // every write must say which version it replaces
		return newKV(t, kv.Config{Address: srv.URL, Path: "certkeeper", Token: rootToken})
	}, vaulttest.Options{KeepsID: true, OrderedWrites: true})
}

// TestAgainstRealServer runs the conformance suite against a real Vault or
// OpenBao server when VAULT_ADDR and VAULT_TOKEN name one (with a KV v2
// mount at CERTKEEPER_TEST_VAULT_MOUNT, default "secret"). None can be
// installed on the CI machines, so there it is skipped; the fake server
// above is what runs there.
func TestAgainstRealServer(t *testing.T) {
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Skip("VAULT_ADDR and VAULT_TOKEN are not set: no real Vault or OpenBao server to test against")
	}
	mount := os.Getenv("CERTKEEPER_TEST_VAULT_MOUNT")
	prefix := "certkeeper-test/" + operation.NewID()
	vaulttest.Run(t, func(t *testing.T) vault.Destination {
		return newKV(t, kv.Config{Address: addr, Mount: mount, Path: prefix + "/" + operation.NewID(),
			Token: secret.String(token), Namespace: os.Getenv("VAULT_NAMESPACE")})
	}, vaulttest.Options{KeepsID: true, OrderedWrites: true})
}

func TestSecretFields(t *testing.T) {
	t.Parallel()
	srv := kvtest.Start(t, rootToken)
	srv.Mount = "pki-kv"
	k := newKV(t, kv.Config{Address: srv.URL, Mount: "/pki-kv/", Path: "/teams/web/", Token: rootToken})
	v := vaulttest.NewVersion(t, "www", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	r, err := k.Deliver(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	if want := "pki-kv/data/teams/web/www (version 1)"; r.Location != want || !r.Changed {
		t.Errorf("receipt = %+v, want changed at %s", r, want)
	}
	data, n := srv.Data("teams/web/www")
	want := map[string]any{
		"certificate": string(v.CertPEM), "chain": string(v.ChainPEM), "private_key": string(v.KeyPEM),
		"not_before": "2026-03-01T10:00:00Z", "not_after": "2026-05-30T10:00:00Z",
		"serial_number": v.Serial, "version_id": v.ID,
	}
	if diff := cmp.Diff(want, data); diff != "" || n != 1 {
		t.Errorf("secret version %d (-want +got):\n%s", n, diff)
	}
}

func TestCASConflict(t *testing.T) {
	t.Parallel()
	base := time.Now().Add(-time.Hour)

	t.Run("another writer wins the race with an older version: read again and write", func(t *testing.T) {
		srv := kvtest.Start(t, rootToken)
		srv.CASRequired = true
		k := newKV(t, kv.Config{Address: srv.URL, Token: rootToken})
		older := vaulttest.NewVersion(t, "race", base)
		mine := vaulttest.NewVersion(t, "race", base.Add(time.Minute))
		var raced atomic.Bool
		srv.BeforeWrite = func(path string) {
			if raced.CompareAndSwap(false, true) {
				srv.Write(path, map[string]any{"certificate": string(older.CertPEM), "chain": string(older.ChainPEM),
					"private_key": string(older.KeyPEM), "version_id": older.ID})
			}
		}
		r, err := k.Deliver(t.Context(), mine)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(r.Location, "(version 2)") {
			t.Errorf("location = %q, want version 2 (after the other writer's version 1)", r.Location)
		}
		if data, _ := srv.Data("race"); data["version_id"] != mine.ID {
			t.Errorf("current version_id = %v, want mine %s", data["version_id"], mine.ID)
		}
		if srv.Writes() != 2 {
			t.Errorf("writes applied = %d, want 2 (the rival's, then mine; the conflicting one refused)", srv.Writes())
		}
	})

	t.Run("another writer wins with a newer version: superseded", func(t *testing.T) {
		srv := kvtest.Start(t, rootToken)
		k := newKV(t, kv.Config{Address: srv.URL, Token: rootToken})
		mine := vaulttest.NewVersion(t, "race", base)
		newer := vaulttest.NewVersion(t, "race", base.Add(time.Minute))
		var raced atomic.Bool
		srv.BeforeWrite = func(path string) {
			if raced.CompareAndSwap(false, true) {
				srv.Write(path, map[string]any{"certificate": string(newer.CertPEM), "chain": string(newer.ChainPEM),
					"private_key": string(newer.KeyPEM), "version_id": newer.ID})
			}
		}
		if _, err := k.Deliver(t.Context(), mine); !errors.Is(err, vault.ErrSuperseded) {
			t.Fatalf("Deliver = %v, want ErrSuperseded", err)
		}
		if data, n := srv.Data("race"); data["version_id"] != newer.ID || n != 1 {
			t.Errorf("current = version %d %v, want the rival's newer version 1", n, data["version_id"])
		}
	})

	t.Run("a writer that always races gives up with an error", func(t *testing.T) {
		srv := kvtest.Start(t, rootToken)
		k := newKV(t, kv.Config{Address: srv.URL, Token: rootToken})
		older := vaulttest.NewVersion(t, "race", base)
		srv.BeforeWrite = func(path string) {
			srv.Write(path, map[string]any{"certificate": string(older.CertPEM), "version_id": older.ID})
		}
		_, err := k.Deliver(t.Context(), vaulttest.NewVersion(t, "race", base.Add(time.Minute)))
		if err == nil || !strings.Contains(err.Error(), "check-and-set") {
			t.Fatalf("Deliver = %v, want a check-and-set error", err)
		}
	})

	t.Run("a deleted newest version is written over", func(t *testing.T) {
		srv := kvtest.Start(t, rootToken)
		srv.CASRequired = true
		k := newKV(t, kv.Config{Address: srv.URL, Token: rootToken})
		v1 := vaulttest.NewVersion(t, "deleted", base.Add(time.Minute))
		if _, err := k.Deliver(t.Context(), v1); err != nil {
			t.Fatal(err)
		}
		srv.DeleteLatest("deleted")
		if _, err := k.Current(t.Context(), "deleted"); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("Current after delete = %v, want ErrNotFound", err)
		}
		v0 := vaulttest.NewVersion(t, "deleted", base)
		if r, err := k.Deliver(t.Context(), v0); err != nil || !r.Changed {
			t.Fatalf("Deliver over a deleted version = %+v, %v", r, err)
		}
	})
}

func TestAuth(t *testing.T) {
	t.Parallel()
	v := vaulttest.NewVersion(t, "auth", time.Now().Add(-time.Hour))

	t.Run("approle logs in, and again when the token is revoked", func(t *testing.T) {
		srv := kvtest.Start(t, rootToken)
		srv.RoleID, srv.SecretID = "role-1", "secret-1"
		srv.Namespace = "team-a"
		k := newKV(t, kv.Config{Address: srv.URL, Namespace: "team-a", AuthMethod: kv.AuthAppRole,
			RoleID: "role-1", SecretID: "secret-1"})
		if _, err := k.Deliver(t.Context(), v); err != nil {
			t.Fatal(err)
		}
		if srv.Logins() != 1 {
			t.Errorf("logins = %d, want 1", srv.Logins())
		}
		srv.RevokeTokens(rootToken)
		if _, err := k.Current(t.Context(), "auth"); err != nil {
			t.Fatalf("Current after the token was revoked: %v", err)
		}
		if srv.Logins() != 2 {
			t.Errorf("logins = %d, want 2", srv.Logins())
		}
	})

	t.Run("approle with a wrong secret id fails without saying it", func(t *testing.T) {
		srv := kvtest.Start(t, rootToken)
		srv.RoleID, srv.SecretID = "role-1", "secret-1"
		k := newKV(t, kv.Config{Address: srv.URL, AuthMethod: kv.AuthAppRole, RoleID: "role-1",
			SecretID: "wrong-secret-id-value"})
		_, err := k.Deliver(t.Context(), v)
		if err == nil || !strings.Contains(err.Error(), "invalid role or secret ID") {
			t.Fatalf("Deliver = %v, want the server's refusal", err)
		}
		if strings.Contains(err.Error(), "wrong-secret-id-value") {
			t.Errorf("the error reveals the secret id: %v", err)
		}
	})

	t.Run("kubernetes reads the service account token at login", func(t *testing.T) {
		srv := kvtest.Start(t, rootToken)
		srv.Role, srv.JWT = "certkeeper", "eyJhbGciOiJSUzI1NiJ9.sa-token.sig"
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(srv.JWT+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		k := newKV(t, kv.Config{Address: srv.URL, AuthMethod: kv.AuthKubernetes, Role: "certkeeper",
			TokenFile: tokenFile})
		if _, err := k.Deliver(t.Context(), v); err != nil {
			t.Fatal(err)
		}
		if srv.Logins() != 1 {
			t.Errorf("logins = %d, want 1", srv.Logins())
		}
	})

	t.Run("a wrong token is refused", func(t *testing.T) {
		srv := kvtest.Start(t, rootToken)
		k := newKV(t, kv.Config{Address: srv.URL, Token: "hvs.not-the-token"})
		_, err := k.Deliver(t.Context(), v)
		if err == nil || !strings.Contains(err.Error(), "permission denied") || strings.Contains(err.Error(), "hvs.not-the-token") {
			t.Fatalf("Deliver = %v, want permission denied without the token", err)
		}
	})
}

func TestEnvironmentIsIgnored(t *testing.T) {
	// The Vault client reads VAULT_TOKEN by itself; the configuration wins.
	t.Setenv("VAULT_TOKEN", rootToken)
	srv := kvtest.Start(t, rootToken)
	k := newKV(t, kv.Config{Address: srv.URL, Token: "hvs.configured-and-wrong"})
	if _, err := k.Current(t.Context(), "x"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Current = %v, want permission denied: the token from VAULT_TOKEN was used", err)
	}
}
