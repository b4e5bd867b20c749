package app_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/vault/azkv/azkvtest"
	"github.com/certkeeper/certkeeper/internal/vault/files"
	"github.com/certkeeper/certkeeper/internal/vault/kv/kvtest"
)

// TestDestinations issues a certificate from Pebble and renews it; both
// versions land in the built-in store, a files destination (its reload
// command run), a Vault KV v2 server and an Azure Key Vault (both the test
// servers), every delivery shown on the operation. A destination whose
// reload command fails is retried by a job of its own until it succeeds.
func TestDestinations(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		kvSrv := kvtest.Start(t, "hvs.app-test")
		kvSrv.CASRequired = true
		akv := azkvtest.Start(t)
		dir := t.TempDir()
		reloads := filepath.Join(t.TempDir(), "reloads")
		broken := filepath.Join(t.TempDir(), "broken")
		if err := os.WriteFile(broken, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := d.config(t, db)
		cfg.Destinations = []config.Destination{
			{Name: "web", Type: config.DestinationFiles, Files: &config.FilesDestination{Dir: dir + "/web",
				ReloadCommand: `echo "$CERTKEEPER_CERTIFICATE_NAME $CERTKEEPER_VERSION_ID" >> ` + reloads + `; echo reloaded`}},
			{Name: "flaky", Type: config.DestinationFiles, Files: &config.FilesDestination{Dir: dir + "/flaky",
				ReloadCommand: `if [ -e ` + broken + ` ]; then echo "still broken" >&2; exit 7; fi`}},
			{Name: "bao", Type: config.DestinationVault, Vault: &config.VaultDestination{Address: kvSrv.URL,
				Path: "certkeeper", Token: "hvs.app-test"}},
			{Name: "prod-kv", Type: config.DestinationAzureKeyVault, AzureKeyVault: &config.AzureKeyVaultBlock{
				VaultURL: akv.VaultURL(), Credential: "clientSecret", TenantID: akv.TenantID, ClientID: akv.ClientID,
				ClientSecret: secret.String(akv.ClientSecret)}},
		}
		cfg.DefaultDestinations = []string{"web", "bao", "prod-kv"}
		cfg.Delivery.RetryMin, cfg.Delivery.RetryMax = 100*time.Millisecond, 200*time.Millisecond
		base := serviceWith(t, cfg, akv)

		zone := "dest-" + db + ".example.test"
		name := "dest-" + db + "-example-test"
		// A destination that is not configured is refused up front.
		r := do(t, http.MethodPost, base+"/api/certificate", `{"dnsNames":["`+zone+`"],"destinations":["nope"]}`)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("issue with an unknown destination = %d, want 400", r.StatusCode)
		}

		accepted := post(t, base+"/api/certificate",
			`{"dnsNames":["`+zone+`"],"keyType":"EC","destinations":["web","flaky","bao","prod-kv"]}`)
		if status, body := waitFor(t, accepted); status != http.StatusOK {
			t.Fatalf("issuance ended with %d: %s", status, body)
		}
		op1 := operationOf(t, base, accepted)
		byDest := deliveries(op1)
		for _, dest := range []string{"web", "bao", "prod-kv"} {
			if byDest[dest].Status != "delivered" {
				t.Errorf("delivery to %s = %+v, want delivered by the time the operation succeeded", dest, byDest[dest])
			}
		}
		if c := byDest["web"].Receipt.Command; c == nil || c.ExitCode != 0 || c.Output != "reloaded\n" {
			t.Errorf("web's reload command on the operation = %+v", c)
		}
		flaky := byDest["flaky"]
		if flaky.Status != "retrying" || flaky.Receipt.Command == nil || flaky.Receipt.Command.ExitCode != 7 ||
			flaky.Receipt.Command.Output != "still broken\n" || !strings.Contains(flaky.Error, "exit status 7") {
			t.Errorf("flaky delivery = %+v, want retrying with exit 7 and its output", flaky)
		}
		assertHolds(t, dir+"/web", kvSrv, akv, name, op1.ID, 1)

		// Fixed: the retry job delivers it without another issuance.
		if err := os.Remove(broken); err != nil {
			t.Fatal(err)
		}
		for {
			if dl := deliveries(operationOf(t, base, accepted))["flaky"]; dl.Status == "delivered" {
				if dl.Attempts < 2 {
					t.Errorf("flaky delivered after %d attempts, want at least 2", dl.Attempts)
				}
				break
			} else if dl.Status != "retrying" {
				t.Fatalf("flaky delivery = %+v", dl)
			}
			select {
			case <-t.Context().Done():
				t.Fatal("the flaky delivery was not retried before the test deadline")
			case <-time.After(50 * time.Millisecond):
			}
		}

		// Renewed: the new version lands everywhere.
		accepted = post(t, base+"/api/certificate/"+name+"/renew", "")
		if status, body := waitFor(t, accepted); status != http.StatusOK {
			t.Fatalf("renewal ended with %d: %s", status, body)
		}
		op2 := operationOf(t, base, accepted)
		for dest, dl := range deliveries(op2) {
			if dl.Status != "delivered" || !dl.Receipt.Changed {
				t.Errorf("renewal's delivery to %s = %+v", dest, dl)
			}
		}
		assertHolds(t, dir+"/web", kvSrv, akv, name, op2.ID, 2)
		if got := readLines(t, reloads); len(got) != 2 || got[0] != name+" "+op1.ID || got[1] != name+" "+op2.ID {
			t.Errorf("web's reload command ran with %q", got)
		}

		// The versions, and what each destination holds.
		var versions []map[string]any
		if err := json.NewDecoder(do(t, http.MethodGet, base+"/api/certificates/"+name+"/versions", "").Body).Decode(&versions); err != nil {
			t.Fatal(err)
		}
		if len(versions) != 2 || versions[0]["id"] != op2.ID || versions[1]["id"] != op1.ID {
			t.Errorf("versions = %v", versions)
		}
		item := certificateItem(t, base, name)
		dests, _ := item["destinations"].([]any)
		if len(dests) != 4 {
			t.Fatalf("certificate item destinations = %v", item["destinations"])
		}
		for _, x := range dests {
			m := x.(map[string]any)
			if m["upToDate"] != true || m["deliveredVersionId"] != op2.ID || m["lastError"] != "" {
				t.Errorf("destination state = %v, want the renewed version", m)
			}
		}
	})
}

// assertHolds checks that every destination holds the version id (the
// operation id), the n-th one imported into Key Vault.
func assertHolds(t *testing.T, dir string, kvSrv *kvtest.Server, akv *azkvtest.Server, name, id string, n int) {
	t.Helper()
	data, _ := kvSrv.Data("certkeeper/" + name)
	if data["version_id"] != id {
		t.Errorf("Vault holds version %v, want %s", data["version_id"], id)
	}
	cert, err := os.ReadFile(filepath.Join(dir, name, files.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	if data["certificate"] != string(cert) {
		t.Error("the files destination and Vault hold different certificates")
	}
	imports := akv.Imports()
	if len(imports) != n {
		t.Fatalf("Key Vault imports = %d, want %d", len(imports), n)
	}
	last := imports[n-1]
	if last.Name != name || !strings.Contains(string(cert), strings.TrimSpace(pemOf(last.Leaf.Raw))) {
		t.Errorf("Key Vault's newest import is not the certificate in the files")
	}
	if !strings.Contains(last.Tags["Acmebot"], `"dnsProvider":"BIND"`) {
		t.Errorf("Key Vault tags = %v", last.Tags)
	}
}

type deliveryJSON struct {
	Destination string `json:"destination"`
	Status      string `json:"status"`
	Attempts    int    `json:"attempts"`
	Error       string `json:"error"`
	Receipt     struct {
		Changed bool `json:"changed"`
		Command *struct {
			ExitCode int    `json:"exitCode"`
			Output   string `json:"output"`
		} `json:"command"`
	} `json:"receipt"`
}

type operationJSON struct {
	ID         string         `json:"id"`
	Deliveries []deliveryJSON `json:"deliveries"`
}

func operationOf(t *testing.T, base string, accepted *http.Response) operationJSON {
	t.Helper()
	id := accepted.Header.Get("Location")
	id = id[strings.LastIndexByte(id, '/')+1:]
	var op operationJSON
	if err := json.NewDecoder(do(t, http.MethodGet, base+"/api/operations/"+id, "").Body).Decode(&op); err != nil {
		t.Fatal(err)
	}
	return op
}

func deliveries(op operationJSON) map[string]deliveryJSON {
	out := map[string]deliveryJSON{}
	for _, d := range op.Deliveries {
		out[d.Destination] = d
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// serviceWith is service with the Azure test server's transport.
func serviceWith(t *testing.T, cfg config.Config, akv *azkvtest.Server) string {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	key, _, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(cfg.ACME.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(t.Context(), app.Options{Config: &cfg, MasterKey: key, CABundle: bundle, Version: "test",
		Logger: logger, AzureTransport: akv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "http://" + a.Addr().String()
}

func pemOf(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
