package app_test

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/azkv/azkvtest"
	"github.com/certkeeper/certkeeper/internal/vault/vaulttest"
)

func TestImportFromAzure(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, db string) {
		akv := azkvtest.Start(t)
		v := vaulttest.NewVersion(t, "www-example-com", time.Now().Add(-time.Hour))
		leaf, _ := v.Leaf()
		key, _ := issuer.ParseKeyPEM(v.KeyPEM)
		chain, _ := vault.ParseCertificates(v.ChainPEM)
		akv.Add("www-example-com", leaf, chain, key, map[string]string{"Issuer": "Acmebot",
			"Endpoint": "https://acme-v02.api.letsencrypt.org/", "DnsProvider": "BIND"}, false)

		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.DNS.Providers = []config.DNSProvider{{Name: "BIND"}}
		cfg.Destinations = []config.Destination{{Name: "prod-kv", Type: config.DestinationAzureKeyVault,
			AzureKeyVault: &config.AzureKeyVaultBlock{VaultURL: akv.VaultURL(), Credential: "clientSecret",
				TenantID: akv.TenantID, ClientID: akv.ClientID, ClientSecret: secret.String(akv.ClientSecret)}}}
		dsn := filepath.Join(cfg.DataDir, "certkeeper.db")
		if db == "postgres" {
			dsn = testenv.PostgresURL(t)
		}
		st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		mk, _, _ := secret.NewKey()

		res, err := app.ImportFromAzure(t.Context(), &cfg, st, mk, "prod-kv", false, akv.Client())
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].Outcome != "imported" {
			t.Fatalf("results = %+v", res)
		}
		got, err := vault.NewBuiltin(st, mk).Latest(t.Context(), "www-example-com")
		if err != nil {
			t.Fatal(err)
		}
		vaulttest.Equal(t, vaulttest.Options{}, got, v)
		wantSpec := v.Spec
		wantSpec.DNSProviderName, wantSpec.Destinations = "BIND", []string{"prod-kv"}
		if diff := cmp.Diff(wantSpec, got.Spec); diff != "" {
			t.Errorf("spec (-want +got):\n%s", diff)
		}
		if got.ACMEEndpoint != "https://acme-v02.api.letsencrypt.org/directory" {
			t.Errorf("endpoint = %q", got.ACMEEndpoint)
		}
		states, _ := st.DestinationStates(t.Context())
		if s := states["www-example-com"]; len(s) != 1 || s[0].DeliveredVersionID != got.ID {
			t.Errorf("destination state = %+v", s)
		}
		// Again: nothing new.
		res, err = app.ImportFromAzure(t.Context(), &cfg, st, mk, "prod-kv", false, akv.Client())
		if err != nil || len(res) != 1 || res[0].Outcome != "present" {
			t.Errorf("second import = %+v, %v", res, err)
		}
		if _, err := app.ImportFromAzure(t.Context(), &cfg, st, mk, "nope", false, akv.Client()); err == nil {
			t.Error("import from an unknown destination succeeded")
		}
	})
}
