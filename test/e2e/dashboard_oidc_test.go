package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestDashboardOIDC signs in to the dashboard through an OIDC provider
// (mockoidc, which approves at once) with the authorization code flow and
// PKCE, lands on the certificate list, and uses the token the tab kept
// against the API.
func TestDashboardOIDC(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	bind := testenv.StartBIND(t, testenv.BINDOptions{Zones: zones})
	pebble := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, BlockedDomains: []string{refusedZone}})
	idp := testenv.StartOIDC(t)
	idp.AllowPublicClient()
	dataDir := t.TempDir()
	srv := startServer(t, map[string]any{
		"dataDir": dataDir,
		"acme":    map[string]any{"endpoint": pebble.DirectoryURL, "caBundle": pebble.CABundle, "profile": "default"},
		"dns": map[string]any{"resolvers": []string{bind.Addr}, "propagationTimeout": "8s",
			"providers": []map[string]any{{"name": "Primary", "type": "rfc2136", "zones": []string{zone}, "nameserver": bind.Addr,
				"tsigKeyName": bind.TSIGKeyName, "tsigAlgorithm": bind.TSIGAlgorithm, "tsigSecret": bind.TSIGSecret}}},
		"auth": map[string]any{"requireRoles": true, "oidc": []map[string]any{{
			"issuer": idp.Issuer, "audience": idp.ClientID, "dashboardClientId": idp.ClientID,
			"dashboardScope": "openid profile",
		}}},
		"log": map[string]any{"level": "info", "format": "text"},
	}, dataDir)

	// The settings the sign-in page reads are public and name the issuer's
	// endpoints from its discovery document.
	cfg := srv.do(ctx, t, http.MethodGet, "/dashboard/oidc-config", "", nil)
	var got struct {
		Issuers []struct {
			Issuer, ClientID, Scope, Token, AuthorizationEndpoint, TokenEndpoint string
		}
	}
	if err := json.Unmarshal(cfg.Body, &got); err != nil || cfg.Status != http.StatusOK || len(got.Issuers) != 1 {
		t.Fatalf("GET /dashboard/oidc-config = %s (%v)", cfg, err)
	}
	if i := got.Issuers[0]; i.Issuer != idp.Issuer || i.ClientID != idp.ClientID || i.Token != "id" ||
		i.AuthorizationEndpoint != idp.Issuer+"/authorize" || i.TokenEndpoint != idp.Issuer+"/token" {
		t.Errorf("GET /dashboard/oidc-config = %s", cfg.Body)
	}
	idpOrigin := strings.TrimSuffix(idp.Issuer, "/oidc")
	if csp := srv.do(ctx, t, http.MethodGet, "/signin/oidc", "", nil).Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' "+idpOrigin+";") {
		t.Errorf("CSP of /signin/oidc = %q, want the token endpoint's origin %s in connect-src", csp, idpOrigin)
	}

	idp.QueueUser("jane", map[string]any{"roles": []string{roleIssue}})
	b := startBrowser(t)
	b.navigate(srv.baseURL + "/")
	b.waitPath("/signin?next=%2F")
	host := strings.TrimPrefix(idpOrigin, "http://")
	b.waitText(".other-signin a", "Sign in with "+host)
	b.click(".other-signin a")
	b.waitPath("/")
	b.waitFor("the certificate list", `() => document.getElementById("stat-total").textContent === "0"`)
	b.screenshot("oidc-01-certificates")

	// The token is in this tab's sessionStorage only, the PKCE leftovers
	// are gone, and the API accepts it as a bearer token.
	cred := eval[string](b, `sessionStorage.getItem("certkeeper.credential")`)
	var c struct{ Kind, Secret string }
	if err := json.Unmarshal([]byte(cred), &c); err != nil || c.Kind != "bearer" || strings.Count(c.Secret, ".") != 2 {
		t.Fatalf("credential in sessionStorage = %q (%v), want a bearer JWT", cred, err)
	}
	if n := eval[float64](b, `localStorage.length + (sessionStorage.getItem("certkeeper.oidc") === null ? 0 : 1)`); n != 0 {
		t.Errorf("%v entries left in localStorage or the pending sign-in", n)
	}
	if cookies := eval[string](b, `document.cookie`); cookies != "" {
		t.Errorf("cookies %q, want none", cookies)
	}
	status, body := bearerGet(ctx, t, srv.baseURL+"/api/me", c.Secret)
	if status != http.StatusOK || !strings.Contains(body, `"jane"`) {
		t.Errorf("GET /api/me with the dashboard's token = %d %s", status, body)
	}
	if status, body := bearerGet(ctx, t, srv.baseURL+"/api/certificates", c.Secret); status != http.StatusOK {
		t.Errorf("GET /api/certificates with the dashboard's token = %d %s", status, body)
	}

	// A callback whose state this tab did not start is refused.
	b.navigate(srv.baseURL + "/signin/oidc?" + url.Values{"code": {"x"}, "state": {"forged"}}.Encode())
	b.waitText("#oidc-error", "This sign-in was not started in this tab (the state does not match). Start again.")
}

func bearerGet(ctx context.Context, t *testing.T, target, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
