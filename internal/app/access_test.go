package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

const rootKey = "root-admin-key-0123456789"

// client calls a running service with one credential: an API key, or a
// bearer token when it has no "ck_" prefix and holds two dots.
type client struct {
	t    *testing.T
	base string
	cred string
}

func (c client) do(method, path, body string) (int, http.Header, string) {
	c.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if strings.Count(c.cred, ".") == 2 && !strings.HasPrefix(c.cred, "ck_") {
		req.Header.Set("Authorization", "Bearer "+c.cred)
	} else if c.cred != "" {
		req.Header.Set("X-Functions-Key", c.cred)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// want fails the test unless the request answers status.
func (c client) want(status int, method, path, body string) (http.Header, string) {
	c.t.Helper()
	got, h, b := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s = %d; want %d: %s", method, path, got, status, b)
	}
	return h, b
}

// wait starts an operation and polls it, with the same credential, until it
// ends; it returns the operation id and the final status.
func (c client) wait(path, body string) (string, int, string) {
	c.t.Helper()
	h, _ := c.want(http.StatusAccepted, http.MethodPost, path, body)
	loc := h.Get("Location")
	for {
		status, _, b := c.do(http.MethodGet, loc, "")
		if status != http.StatusAccepted {
			return loc[strings.LastIndexByte(loc, '/')+1:], status, b
		}
		select {
		case <-c.t.Context().Done():
			c.t.Fatal("operation did not end before the test deadline")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c client) names() []string {
	c.t.Helper()
	_, body := c.want(http.StatusOK, http.MethodGet, "/api/certificates", "")
	var items []struct{ Name string }
	if err := json.Unmarshal([]byte(body), &items); err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	slices.Sort(out)
	return out
}

type auditEntry struct {
	Actor struct {
		Kind, ID, Name, Issuer string
	}
	Action, CertificateName, OperationID, Address, Result, Detail string
	Status                                                        int
}

func (c client) audit(query string) []auditEntry {
	c.t.Helper()
	_, body := c.want(http.StatusOK, http.MethodGet, "/api/audit?"+query, "")
	var page struct{ Entries []auditEntry }
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		c.t.Fatal(err)
	}
	return page.Entries
}

// accessConfig is d.config with roles required, an admin key, and idp as an
// OIDC issuer.
func (d deps) accessConfig(t *testing.T, db string, idp *testenv.OIDC) config.Config {
	cfg := d.config(t, db)
	cfg.Auth.RequireRoles = true
	cfg.Auth.APIKeys = []config.APIKey{{Name: "root", Key: rootKey, Roles: []string{"Certkeeper.Admin"}}}
	cfg.Auth.OIDC = []config.OIDC{{Issuer: idp.Issuer, Audience: config.Strings{idp.ClientID},
		RoleMappings: []config.RoleMapping{{Claim: "groups", Value: "web-team", Roles: []string{"Acmebot.IssueCertificate"},
			Zones: []string{"web." + db + ".example.test"}}}}}
	return cfg
}

// TestAccess drives the service as an admin, a zone-limited managed key and
// OIDC users: key lifecycle with revocation taking effect at once, zone
// scopes on every route against real issuances, and the audit trail.
func TestAccess(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	idp := testenv.StartOIDC(t)
	eachDatabase(t, func(t *testing.T, db string) {
		base := service(t, d.accessConfig(t, db, idp))
		root := client{t, base, rootKey}
		zone := "team." + db + ".example.test"

		// The admin makes a key for a team, limited to its zone.
		_, body := root.want(http.StatusCreated, http.MethodPost, "/api/keys",
			`{"name":"team","roles":["Acmebot.IssueCertificate","Acmebot.RevokeCertificate","Certkeeper.ReadCertificate"],"zones":["`+zone+`"]}`)
		var created struct{ ID, Key string }
		if err := json.Unmarshal([]byte(body), &created); err != nil || !strings.HasPrefix(created.Key, "ck_") {
			t.Fatalf("created key = %s (%v)", body, err)
		}
		team := client{t, base, created.Key}
		if _, list := root.want(http.StatusOK, http.MethodGet, "/api/keys", ""); strings.Contains(list, created.Key) ||
			!strings.Contains(list, `"name":"team"`) {
			t.Errorf("key list shows the key, or not the team: %s", list)
		}

		// Each issues in its own zone; the team may not leave its zone.
		rootOp, status, body := root.wait("/api/certificate", `{"dnsNames":["www.admin.`+db+`.example.test"]}`)
		if status != http.StatusOK {
			t.Fatalf("admin issuance ended %d: %s", status, body)
		}
		teamOp, status, body := team.wait("/api/certificate", `{"dnsNames":["www.`+zone+`"]}`)
		if status != http.StatusOK {
			t.Fatalf("team issuance ended %d: %s", status, body)
		}
		adminCert, teamCert := "www-admin-"+db+"-example-test", "www-team-"+db+"-example-test"
		team.want(http.StatusForbidden, http.MethodPost, "/api/certificate", `{"dnsNames":["www.admin.`+db+`.example.test"]}`)
		team.want(http.StatusForbidden, http.MethodPost, "/api/certificate/"+adminCert+"/renew", "")
		team.want(http.StatusForbidden, http.MethodPost, "/api/certificate/"+adminCert+"/revoke", "")
		team.want(http.StatusForbidden, http.MethodGet, "/api/state/"+rootOp, "")
		team.want(http.StatusForbidden, http.MethodGet, "/api/operations/"+rootOp, "")
		team.want(http.StatusForbidden, http.MethodGet, "/api/certificates/"+adminCert+"/download", "")
		team.want(http.StatusOK, http.MethodGet, "/api/state/"+teamOp, "")
		root.want(http.StatusOK, http.MethodGet, "/api/operations/"+teamOp, "")
		if _, pem := team.want(http.StatusOK, http.MethodGet, "/api/certificates/"+teamCert+"/download", ""); !strings.Contains(pem, "PRIVATE KEY") {
			t.Errorf("team download holds no private key")
		}
		if got := team.names(); !slices.Equal(got, []string{teamCert}) {
			t.Errorf("team lists %v; want only %s", got, teamCert)
		}
		if got := root.names(); !slices.Equal(got, []string{adminCert, teamCert}) {
			t.Errorf("admin lists %v; want both", got)
		}
		team.want(http.StatusForbidden, http.MethodGet, "/api/keys", "")
		team.want(http.StatusForbidden, http.MethodGet, "/api/audit", "")
		team.want(http.StatusOK, http.MethodPost, "/api/certificate/"+teamCert+"/revoke", "")

		// OIDC: a user of the web team may issue under web.<db>, nowhere
		// else, and reads only there; a token for another audience is
		// refused.
		web := client{t, base, idp.Login(t, "alice@"+db, map[string]any{"groups": []string{"web-team"}})}
		webOp, status, body := web.wait("/api/certificate", `{"dnsNames":["www.web.`+db+`.example.test"]}`)
		if status != http.StatusOK {
			t.Fatalf("OIDC issuance ended %d: %s", status, body)
		}
		web.want(http.StatusForbidden, http.MethodPost, "/api/certificate", `{"dnsNames":["www.`+zone+`"]}`)
		if got := web.names(); !slices.Equal(got, []string{"www-web-" + db + "-example-test"}) {
			t.Errorf("OIDC user lists %v", got)
		}
		outsider := testenv.Sign(t, idp.ProviderKey(), idp.Claims("mallory", map[string]any{"aud": "another-app", "groups": []string{"web-team"}}))
		client{t, base, outsider}.want(http.StatusUnauthorized, http.MethodGet, "/api/certificates", "")

		// Revocation takes effect at the next request.
		root.want(http.StatusNoContent, http.MethodDelete, "/api/keys/"+created.ID, "")
		team.want(http.StatusUnauthorized, http.MethodGet, "/api/certificates", "")
		root.want(http.StatusConflict, http.MethodDelete, "/api/keys/root", "")

		// Every change, refusal and outcome is on record.
		entries := root.audit("limit=1000")
		has := func(what string, match func(e auditEntry) bool) {
			t.Helper()
			if !slices.ContainsFunc(entries, match) {
				t.Errorf("no audit entry for %s in %+v", what, entries)
			}
		}
		has("the key's creation", func(e auditEntry) bool {
			return e.Action == "apikey.create" && e.Actor.Name == "root" && e.Status == 201 && strings.Contains(e.Detail, "team")
		})
		has("the team's issuance", func(e auditEntry) bool {
			return e.Action == "certificate.issue" && e.Actor.Name == "team" && e.Result == "accepted" &&
				e.CertificateName == teamCert && e.OperationID == teamOp && e.Address == "127.0.0.1"
		})
		has("the team's issuance succeeding", func(e auditEntry) bool {
			return e.Action == "operation.succeeded" && e.Actor.Name == "team" && e.OperationID == teamOp
		})
		has("the team's refused issuance", func(e auditEntry) bool {
			return e.Action == "certificate.issue" && e.Actor.Name == "team" && e.Result == "denied" && e.Status == 403
		})
		has("the team's refused renewal", func(e auditEntry) bool {
			return e.Action == "certificate.renew" && e.Result == "denied" && e.CertificateName == adminCert
		})
		has("the revocation", func(e auditEntry) bool {
			return e.Action == "certificate.revoke" && e.Result == "succeeded" && e.CertificateName == teamCert
		})
		has("the OIDC user's issuance", func(e auditEntry) bool {
			return e.Action == "certificate.issue" && e.Actor.Kind == "oidc" && e.Actor.Name == "alice@"+db &&
				e.Actor.Issuer == idp.Issuer && e.OperationID == webOp
		})
		has("the OIDC user's issuance succeeding", func(e auditEntry) bool {
			return e.Action == "operation.succeeded" && e.Actor.Kind == "oidc" && e.OperationID == webOp
		})
		has("the key's revocation", func(e auditEntry) bool {
			return e.Action == "apikey.revoke" && e.Status == 204 && strings.Contains(e.Detail, created.ID)
		})
		has("the refused revocation of a configured key", func(e auditEntry) bool {
			return e.Action == "apikey.revoke" && e.Status == 409
		})
		for _, e := range entries {
			if strings.Contains(e.Detail, created.Key) || strings.Contains(e.Detail, rootKey) {
				t.Errorf("an audit entry holds a key: %+v", e)
			}
		}
		if got := root.audit("certificate=" + teamCert); len(got) == 0 || slices.ContainsFunc(got, func(e auditEntry) bool {
			return e.CertificateName != teamCert
		}) {
			t.Errorf("filter by certificate: %+v", got)
		}
		if got := root.audit("actor=team&action=operation.succeeded"); len(got) != 1 || got[0].OperationID != teamOp {
			t.Errorf("filter by actor and action: %+v", got)
		}
	})
}

// TestKeyRevocationAcrossReplicas runs two replicas on one PostgreSQL
// database: a key made through one works on the other at once, and stops
// working on both the moment it is revoked.
func TestKeyRevocationAcrossReplicas(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	idp := testenv.StartOIDC(t)
	cfg := d.accessConfig(t, "postgres", idp)
	_, masterKey, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg.MasterKey = secret.String(masterKey) // replicas of one database share the master key
	second := cfg
	second.DataDir = t.TempDir()
	a, b := client{t, service(t, cfg), rootKey}, client{t, service(t, second), rootKey}
	_, body := a.want(http.StatusCreated, http.MethodPost, "/api/keys", `{"name":"ci","roles":["Certkeeper.Reader"]}`)
	var created struct{ ID, Key string }
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	onA, onB := client{t, a.base, created.Key}, client{t, b.base, created.Key}
	onB.want(http.StatusOK, http.MethodGet, "/api/certificates", "")
	onA.want(http.StatusOK, http.MethodGet, "/api/certificates", "")
	b.want(http.StatusNoContent, http.MethodDelete, "/api/keys/"+created.ID, "")
	onA.want(http.StatusUnauthorized, http.MethodGet, "/api/certificates", "")
	onB.want(http.StatusUnauthorized, http.MethodGet, "/api/certificates", "")
}
