package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestHistoryAndDashboard issues and renews a certificate on each database
// and reads back what the dashboard shows: the versions, newest first with
// their issuer chain, the certificate's operations, and the dashboard page
// served with its security headers in front of the API.
func TestHistoryAndDashboard(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		base := service(t, d.config(t, db))
		name := "hist-" + db + "-example-test"
		if status, body := issueAndWait(t, base, `{"dnsNames":["hist-`+db+`.example.test"]}`); status != http.StatusOK {
			t.Fatalf("issuance ended with %d: %s", status, body)
		}
		if status, body := waitFor(t, post(t, base+"/api/certificate/"+name+"/renew", "")); status != http.StatusOK {
			t.Fatalf("renewal ended with %d: %s", status, body)
		}
		current := certificateItem(t, base, name)

		var versions []struct {
			ID, SerialNumber, X509Thumbprint string
			Revoked                          bool
			IssuerChain                      []string
		}
		decode(t, do(t, http.MethodGet, base+"/api/certificates/"+name+"/versions", ""), &versions)
		if len(versions) != 2 || versions[0].ID != current["id"] || versions[0].X509Thumbprint != current["x509Thumbprint"] ||
			versions[1].ID == versions[0].ID {
			t.Fatalf("versions = %+v; want 2, the newest being %v", versions, current["id"])
		}
		if len(versions[0].IssuerChain) == 0 || !strings.HasPrefix(versions[0].IssuerChain[0], "Pebble Intermediate CA") {
			t.Errorf("issuer chain %q, want Pebble's intermediate first", versions[0].IssuerChain)
		}

		var ops []struct{ ID, Kind, Status, CertificateName, VersionID string }
		decode(t, do(t, http.MethodGet, base+"/api/operations?certificate="+name, ""), &ops)
		if len(ops) != 2 || ops[0].Kind != "renew" || ops[1].Kind != "issue" || ops[0].Status != "succeeded" ||
			ops[0].VersionID != versions[0].ID || ops[1].VersionID != versions[1].ID {
			t.Errorf("operations = %+v; want the renewal then the issue, each with its version", ops)
		}

		page := do(t, http.MethodGet, base+"/", "")
		if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("GET / = %d %q, CSP %q", page.StatusCode, page.Header.Get("Content-Type"), page.Header.Get("Content-Security-Policy"))
		}
		anon, err := http.Get(base + "/api/operations")
		if err != nil {
			t.Fatal(err)
		}
		anon.Body.Close()
		if anon.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /api/operations without a key = %d, want 401", anon.StatusCode)
		}
	})
}

func decode(t *testing.T, r *http.Response, v any) {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d", r.Request.Method, r.Request.URL, r.StatusCode)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
