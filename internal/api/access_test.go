package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// scopedAuth knows these keys, with roles required:
//   - "team": issue, revoke and read private keys in example.com only;
//   - "ops": every role but admin, everywhere;
//   - "zoneadmin": admin in example.com only;
//   - "root": admin everywhere;
//   - "open": no roles while roles are not required, limited to example.com.
//
// "expired" is refused as an expired key named "old".
type scopedAuth struct{}

var teamGrant = auth.Grant{Roles: []auth.Role{auth.RoleIssue, auth.RoleRevoke, auth.RoleReadCertificate}, Zones: []string{"example.com"}}

func (scopedAuth) Authenticate(r *http.Request) (auth.Principal, error) {
	key := r.Header.Get("X-Functions-Key")
	p := auth.Principal{Kind: auth.KindAPIKey, ID: "id-" + key, Name: key, RequireRoles: true}
	switch key {
	case "team":
		p.Grants = []auth.Grant{teamGrant}
	case "ops":
		p.Roles = []auth.Role{auth.RoleIssue, auth.RoleRevoke, auth.RoleReadCertificate}
	case "zoneadmin":
		p.Grants = []auth.Grant{{Roles: []auth.Role{auth.RoleAdmin}, Zones: []string{"example.com"}}}
	case "root":
		p.Roles = []auth.Role{auth.RoleAdmin}
	case "open":
		p.RequireRoles = false
		p.Grants = []auth.Grant{{Zones: []string{"example.com"}}}
	case "expired":
		return auth.Principal{}, &auth.Failure{Reason: auth.ReasonExpiredKey, Method: auth.MethodAPIKey, KeyName: "old"}
	case "":
		return auth.Principal{}, &auth.Failure{Reason: auth.ReasonMissing}
	default:
		return auth.Principal{}, &auth.Failure{Reason: auth.ReasonUnknownKey, Method: auth.MethodAPIKey}
	}
	return p, nil
}

// fakeAccess keeps keys and the audit log in memory.
type fakeAccess struct {
	mu      sync.Mutex
	keys    []api.Key
	entries []api.AuditEntry
	queries []api.AuditQuery
}

var _ api.Access = (*fakeAccess)(nil)

func (f *fakeAccess) CreateKey(ctx context.Context, nk api.NewKey) (api.Key, secret.String, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.Name == nk.Name {
			return api.Key{}, "", api.ErrKeyExists
		}
	}
	p, _ := auth.FromContext(ctx)
	k := api.Key{ID: "k" + nk.Name, Name: nk.Name, Roles: nk.Roles, Zones: nk.Zones, Source: "managed", CreatedBy: p.Actor()}
	if !nk.ExpiresAt.IsZero() {
		k.ExpiresAt = &nk.ExpiresAt
	}
	f.keys = append(f.keys, k)
	return k, secret.String("ck_secret-of-" + nk.Name), nil
}

func (f *fakeAccess) Keys(context.Context) ([]api.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.keys), nil
}

func (f *fakeAccess) RevokeKey(_ context.Context, id string) (api.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range f.keys {
		if k.ID == id {
			if k.Source == "config" {
				return api.Key{}, api.ErrKeyConfigured
			}
			f.keys = slices.Delete(f.keys, i, i+1)
			return k, nil
		}
	}
	return api.Key{}, api.ErrKeyNotFound
}

func (f *fakeAccess) Audit(_ context.Context, q api.AuditQuery) ([]api.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	out := slices.Clone(f.entries)
	slices.Reverse(out)
	return out[:min(len(out), q.Limit)], nil
}

func (f *fakeAccess) RecordAudit(_ context.Context, e api.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.ID = string(rune('a' + len(f.entries)))
	f.entries = append(f.entries, e)
	return nil
}

func (f *fakeAccess) recorded() []api.AuditEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.entries)
}

func version(name string, names ...string) vault.Version {
	return vault.Version{ID: "v-" + name, Name: name, Spec: certificate.Spec{Name: name, DNSNames: names, KeyType: "RSA", KeySize: 2048},
		NotAfter: time.Now().Add(time.Hour), KeyPEM: []byte("KEY\n"), CertPEM: []byte("CERT\n")}
}

const (
	teamOp  = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	otherOp = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func scopedBackend() *fakeBackend {
	return &fakeBackend{
		versions: []vault.Version{version("www-example-com", "www.example.com"), version("www-other-org", "www.other.org"),
			version("mixed", "a.example.com", "a.other.org")},
		ops: map[string]operation.Operation{
			teamOp:  {ID: teamOp, Status: operation.StatusRunning, CreatedBy: "key:id-team", CreatedByName: "team"},
			otherOp: {ID: otherOp, Status: operation.StatusRunning, CreatedBy: "key:id-ops", CreatedByName: "ops"},
		},
		zones: []api.ZoneGroup{{ProviderName: "A", Zones: []string{"example.com", "other.org"}}, {ProviderName: "B", Zones: []string{"other.net"}}},
	}
}

// TestZoneScopes checks that a caller limited to example.com may act only
// there, sees only its certificates and zones, and polls only its own
// operations, on every route.
func TestZoneScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    request
		status int
	}{
		{"issue in zone", request{method: "POST", path: "/api/certificate", body: `{"dnsNames":["www.example.com","*.example.com"]}`}, 202},
		{"issue outside", request{method: "POST", path: "/api/certificate", body: `{"dnsNames":["www.other.org"]}`}, 403},
		{"issue partly outside", request{method: "POST", path: "/api/certificates", body: `{"dnsNames":["www.example.com","other.org"]}`}, 403},
		{"issue with an alias outside", request{method: "POST", path: "/api/certificate", body: `{"dnsNames":["www.example.com"],"dnsAlias":"acme.other.org"}`}, 403},
		{"issue with an alias inside", request{method: "POST", path: "/api/certificate", body: `{"dnsNames":["www.example.com"],"dnsAlias":"acme.example.com"}`}, 202},
		{"issue, invalid body first", request{method: "POST", path: "/api/certificate", body: `{"dnsNames":[]}`}, 400},
		{"renew in zone", request{method: "POST", path: "/api/certificate/www-example-com/renew"}, 202},
		{"renew outside", request{method: "POST", path: "/api/certificate/www-other-org/renew"}, 403},
		{"renew partly outside", request{method: "POST", path: "/api/certificates/mixed/renew"}, 403},
		{"revoke in zone", request{method: "POST", path: "/api/certificate/www-example-com/revoke"}, 200},
		{"revoke outside", request{method: "POST", path: "/api/certificates/www-other-org/revoke"}, 403},
		{"poll own state", request{method: "GET", path: "/api/state/" + teamOp}, 202},
		{"poll other's state", request{method: "GET", path: "/api/state/" + otherOp}, 403},
		{"poll own operation", request{method: "GET", path: "/api/operations/" + teamOp}, 202},
		{"poll other's operation", request{method: "GET", path: "/api/operations/" + otherOp}, 403},
		{"download in zone", request{method: "GET", path: "/api/certificates/www-example-com/download"}, 200},
		{"download outside", request{method: "GET", path: "/api/certificates/www-other-org/download"}, 403},
		{"download partly outside", request{method: "GET", path: "/api/certificates/mixed/download?format=pem"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := scopedBackend()
			h := api.New(api.Options{Backend: b, Auth: scopedAuth{}})
			req := tt.req
			req.key = "team"
			rec := serve(t, h, req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d; want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == http.StatusForbidden && rec.Body.Len() != 0 {
				t.Errorf("403 body = %q; want empty", rec.Body)
			}
			// A caller with the same roles everywhere may do it all.
			req.key = "ops"
			if tt.status == http.StatusForbidden {
				if rec := serve(t, h, req); rec.Code == http.StatusForbidden {
					t.Errorf("an unlimited caller got 403 too")
				}
			}
		})
	}
	t.Run("nothing reaches the backend when refused", func(t *testing.T) {
		t.Parallel()
		b := scopedBackend()
		h := api.New(api.Options{Backend: b, Auth: scopedAuth{}})
		serve(t, h, request{method: "POST", path: "/api/certificate", key: "team", body: `{"dnsNames":["www.other.org"]}`})
		serve(t, h, request{method: "POST", path: "/api/certificate/www-other-org/renew", key: "team"})
		serve(t, h, request{method: "POST", path: "/api/certificate/www-other-org/revoke", key: "team"})
		if len(b.issued)+len(b.renewed)+len(b.revoked) != 0 {
			t.Errorf("backend called: issued %v renewed %v revoked %v", b.issued, b.renewed, b.revoked)
		}
	})
}

func TestZoneScopedLists(t *testing.T) {
	t.Parallel()
	h := api.New(api.Options{Backend: scopedBackend(), Auth: scopedAuth{}})
	names := func(key string) []string {
		rec := serve(t, h, request{method: "GET", path: "/api/certificates", key: key})
		var items []struct{ Name string }
		if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil {
			t.Fatalf("%s: %v: %s", key, err, rec.Body)
		}
		var out []string
		for _, it := range items {
			out = append(out, it.Name)
		}
		return out
	}
	for key, want := range map[string][]string{
		"team": {"www-example-com"},
		"open": {"www-example-com"},
		"ops":  {"www-example-com", "www-other-org", "mixed"},
	} {
		if diff := cmp.Diff(want, names(key)); diff != "" {
			t.Errorf("%s sees (-want +got):\n%s", key, diff)
		}
	}
	rec := serve(t, h, request{method: "GET", path: "/api/dns-zones", key: "team"})
	if got, want := strings.TrimSpace(rec.Body.String()), `[{"dnsProviderName":"A","dnsZones":[{"name":"example.com"}]}]`; got != want {
		t.Errorf("team's zones = %s; want %s", got, want)
	}
	rec = serve(t, h, request{method: "GET", path: "/api/dns-zones", key: "ops"})
	if !strings.Contains(rec.Body.String(), "other.net") {
		t.Errorf("ops' zones = %s; want every zone", rec.Body)
	}
}

// TestAuditOfRequests checks the audit entry of each kind of state-changing
// request, refused ones included, and that reads are not recorded.
func TestAuditOfRequests(t *testing.T) {
	t.Parallel()
	acc := &fakeAccess{}
	proxy := netip.MustParsePrefix("192.0.2.0/24")
	h := api.New(api.Options{Backend: scopedBackend(), Auth: scopedAuth{}, Access: acc, TrustedProxies: []netip.Prefix{proxy}})
	xff := map[string]string{"X-Forwarded-For": "203.0.113.9, 192.0.2.7"}
	reqs := []request{
		{method: "POST", path: "/api/certificate", key: "team", body: `{"dnsNames":["www.example.com"]}`, header: xff},
		{method: "POST", path: "/api/certificate", key: "team", body: `{"dnsNames":["www.other.org"]}`},
		{method: "POST", path: "/api/certificate", key: "team", body: `{"dnsNames":[]}`},
		{method: "POST", path: "/api/certificates/www-example-com/renew", key: "team"},
		{method: "POST", path: "/api/certificate/www-example-com/revoke", key: "team"},
		{method: "GET", path: "/api/certificates", key: "team"},
		{method: "GET", path: "/api/state/" + teamOp, key: "team"},
		{method: "POST", path: "/api/certificate", body: `{"dnsNames":["www.example.com"]}`},
		{method: "POST", path: "/api/keys", key: "team", body: `{"name":"x"}`},
		{method: "POST", path: "/api/keys", key: "root", body: `{"name":"ci","roles":["Acmebot.IssueCertificate"]}`},
		{method: "DELETE", path: "/api/keys/kci", key: "root"},
	}
	for _, req := range reqs {
		serve(t, h, req)
	}
	team := api.AuditActor{Kind: "key", ID: "key:id-team", Name: "team"}
	root := api.AuditActor{Kind: "key", ID: "key:id-root", Name: "root"}
	want := []api.AuditEntry{
		{Actor: team, Action: "certificate.issue", Certificate: "www-example-com", Operation: opID, Address: "203.0.113.9", Result: "accepted", Status: 202},
		{Actor: team, Action: "certificate.issue", Certificate: "www-other-org", Address: "192.0.2.1", Result: "denied", Status: 403,
			Detail: `caller "team" may not issue www.other.org: not every name is in its zones for Acmebot.IssueCertificate`},
		{Actor: team, Action: "certificate.issue", Address: "192.0.2.1", Result: "rejected", Status: 400, Detail: "DnsNames: The DnsNames is required."},
		{Actor: team, Action: "certificate.renew", Certificate: "www-example-com", Operation: opID, Address: "192.0.2.1", Result: "accepted", Status: 202},
		{Actor: team, Action: "certificate.revoke", Certificate: "www-example-com", Address: "192.0.2.1", Result: "succeeded", Status: 200},
		{Actor: team, Action: "apikey.create", Address: "192.0.2.1", Result: "denied", Status: 403,
			Detail: `caller "team" lacks role Certkeeper.Admin`},
		{Actor: root, Action: "apikey.create", Address: "192.0.2.1", Result: "succeeded", Status: 201,
			Detail: `key "ci" (kci), roles [Acmebot.IssueCertificate], zones []`},
		{Actor: root, Action: "apikey.revoke", Address: "192.0.2.1", Result: "succeeded", Status: 204, Detail: `key "ci" (kci)`},
	}
	got := acc.recorded()
	for _, e := range got {
		if e.At.IsZero() || e.TraceID == "" {
			t.Errorf("entry %+v lacks a time or trace id", e)
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(api.AuditEntry{}, "ID", "At", "TraceID")); diff != "" {
		t.Errorf("audit entries (-want +got):\n%s", diff)
	}
}

// TestRateLimit answers 429 with Retry-After once a caller's bucket is
// empty, per caller and only on issue and renew.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	counters := &auth.Counters{}
	acc := &fakeAccess{}
	h := api.New(api.Options{Backend: scopedBackend(), Auth: scopedAuth{}, Access: acc, Counters: counters,
		RateLimit: api.RateLimit{PerMinute: 2, Burst: 2, Now: clock}})
	issue := request{method: "POST", path: "/api/certificate", key: "team", body: `{"dnsNames":["www.example.com"]}`}
	renew := request{method: "POST", path: "/api/certificate/www-example-com/renew", key: "team"}
	for i, want := range []int{202, 202} {
		if rec := serve(t, h, issue); rec.Code != want {
			t.Fatalf("request %d: status %d; want %d", i, rec.Code, want)
		}
	}
	for _, req := range []request{issue, renew} {
		rec := serve(t, h, req)
		wantProblem(t, rec, http.StatusTooManyRequests, map[string]any{"type": "about:blank", "title": "Too Many Requests",
			"detail": "Too many requests from team; try again in 30 seconds."})
		if got := rec.Header().Get("Retry-After"); got != "30" {
			t.Errorf("Retry-After = %q; want 30", got)
		}
	}
	// Revoking and reading are not limited; another caller has its own bucket.
	if rec := serve(t, h, request{method: "POST", path: "/api/certificate/www-example-com/revoke", key: "team"}); rec.Code != 200 {
		t.Errorf("revoke: status %d; want 200", rec.Code)
	}
	if rec := serve(t, h, request{method: "POST", path: "/api/certificate", key: "ops", body: `{"dnsNames":["www.example.com"]}`}); rec.Code != 202 {
		t.Errorf("another caller: status %d; want 202", rec.Code)
	}
	mu.Lock()
	now = now.Add(30 * time.Second)
	mu.Unlock()
	if rec := serve(t, h, renew); rec.Code != 202 {
		t.Errorf("after Retry-After: status %d; want 202", rec.Code)
	}
	var limited uint64
	for _, s := range counters.Samples() {
		if s.Name == auth.MetricRateLimited {
			limited = s.Value
		}
	}
	if limited != 2 {
		t.Errorf("rate-limited counter = %d; want 2", limited)
	}
	if got := acc.recorded(); got[2].Result != "rate_limited" || got[2].Status != 429 {
		t.Errorf("third entry = %+v; want the 429 recorded", got[2])
	}
}

func TestKeyRoutes(t *testing.T) {
	t.Parallel()
	acc := &fakeAccess{keys: []api.Key{{ID: "cfgci", Name: "ci", Source: "config", Roles: []auth.Role{}, Zones: []string{}}}}
	h := api.New(api.Options{Backend: scopedBackend(), Auth: scopedAuth{}, Access: acc})

	t.Run("who may", func(t *testing.T) {
		for _, tt := range []struct {
			key    string
			status int
		}{{"", 401}, {"team", 403}, {"ops", 403}, {"zoneadmin", 403}, {"root", 200}} {
			for _, req := range []request{{method: "GET", path: "/api/keys"}, {method: "GET", path: "/api/audit"}} {
				req.key = tt.key
				if rec := serve(t, h, req); rec.Code != tt.status {
					t.Errorf("%s %s as %q: status %d; want %d", req.method, req.path, tt.key, rec.Code, tt.status)
				}
			}
		}
	})
	t.Run("create", func(t *testing.T) {
		rec := serve(t, h, request{method: "POST", path: "/api/keys", key: "root",
			body: `{"Name":"team-b","roles":["Acmebot.IssueCertificate","Acmebot.IssueCertificate"],"zones":["B.Example.com.","*.dev.example.com"],"expiresAt":"2099-01-01T00:00:00Z"}`})
		if rec.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if loc := rec.Header().Get("Location"); loc != "http://certkeeper.test/api/keys/kteam-b" {
			t.Errorf("Location = %q", loc)
		}
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"id": "kteam-b", "name": "team-b", "roles": []any{"Acmebot.IssueCertificate"},
			"zones": []any{"b.example.com", "*.dev.example.com"}, "source": "managed", "createdBy": "key:id-root",
			"createdAt": "0001-01-01T00:00:00Z", "expiresAt": "2099-01-01T00:00:00Z", "lastUsedAt": nil, "key": "ck_secret-of-team-b"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("body (-want +got):\n%s", diff)
		}
		if rec := serve(t, h, request{method: "POST", path: "/api/keys", key: "root", body: `{"name":"team-b"}`}); rec.Code != http.StatusConflict {
			t.Errorf("same name again: status %d; want 409", rec.Code)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		rec := serve(t, h, request{method: "POST", path: "/api/keys", key: "root",
			body: `{"name":"bad name","roles":["Admin"],"zones":["-x.example.com"],"expiresAt":"2001-01-01T00:00:00Z"}`})
		wantProblem(t, rec, 400, map[string]any{"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
			"title": "One or more validation errors occurred.", "errors": map[string]any{
				"Name":      []any{"The field Name must match the regular expression '^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$'."},
				"Roles":     []any{"'Admin' is not a role; the roles are Acmebot.IssueCertificate, Acmebot.RevokeCertificate, Certkeeper.Reader, Certkeeper.ReadCertificate, Certkeeper.Admin."},
				"Zones":     []any{`'-x.example.com' is not a zone: label "-x" starts or ends with a hyphen.`},
				"ExpiresAt": []any{"The ExpiresAt must be in the future."},
			}})
		rec = serve(t, h, request{method: "POST", path: "/api/keys", key: "root", body: `{"roles":"x"}`})
		wantProblem(t, rec, 400, map[string]any{"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
			"title": "One or more validation errors occurred.", "errors": map[string]any{
				"Name":  []any{"The Name is required."},
				"Roles": []any{"The Roles must be an array of role names."},
			}})
	})
	t.Run("list and revoke", func(t *testing.T) {
		rec := serve(t, h, request{method: "DELETE", path: "/api/keys/cfgci", key: "root"})
		wantProblem(t, rec, 409, map[string]any{"type": "about:blank", "title": "Conflict",
			"detail": "The API key 'cfgci' comes from the configuration file; remove it from auth.apiKeys there."})
		rec = serve(t, h, request{method: "DELETE", path: "/api/keys/nope", key: "root"})
		wantProblem(t, rec, 404, map[string]any{"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5",
			"title": "Not Found", "detail": "The API key 'nope' does not exist."})
		if rec := serve(t, h, request{method: "POST", path: "/api/keys", key: "root", body: `{"name":"gone"}`}); rec.Code != 201 {
			t.Fatalf("create: %d", rec.Code)
		}
		if rec := serve(t, h, request{method: "DELETE", path: "/api/keys/kgone", key: "root"}); rec.Code != 204 || rec.Body.Len() != 0 {
			t.Errorf("revoke: status %d body %q; want 204 and no body", rec.Code, rec.Body)
		}
		rec = serve(t, h, request{method: "GET", path: "/api/keys", key: "root"})
		if strings.Contains(rec.Body.String(), "gone") || !strings.Contains(rec.Body.String(), `"source":"config"`) {
			t.Errorf("list after revoke: %s", rec.Body)
		}
		if strings.Contains(rec.Body.String(), "ck_") {
			t.Errorf("the list shows a key: %s", rec.Body)
		}
	})
}

func TestAuditRoute(t *testing.T) {
	t.Parallel()
	acc := &fakeAccess{}
	for i := range 3 {
		_ = acc.RecordAudit(t.Context(), api.AuditEntry{Action: "certificate.issue", Certificate: "c", Status: 202 + i})
	}
	h := api.New(api.Options{Backend: scopedBackend(), Auth: scopedAuth{}, Access: acc})
	rec := serve(t, h, request{method: "GET", path: "/api/audit?certificate=c&actor=team&action=certificate.issue&limit=2&before=z", key: "root"})
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var page struct {
		Entries []api.AuditEntry
		Next    string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 2 || page.Next != "b" {
		t.Errorf("page = %+v; want two entries and next b", page)
	}
	if link := rec.Header().Get("Link"); link != `<http://certkeeper.test/api/audit?action=certificate.issue&actor=team&before=b&certificate=c&limit=2>; rel="next"` {
		t.Errorf("Link = %q", link)
	}
	if diff := cmp.Diff([]api.AuditQuery{{Certificate: "c", Actor: "team", Action: "certificate.issue", Before: "z", Limit: 2}}, acc.queries); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	rec = serve(t, h, request{method: "GET", path: "/api/audit?limit=5000", key: "root"})
	if rec.Code != 400 {
		t.Errorf("limit 5000: status %d; want 400", rec.Code)
	}
	// Nothing changes the log.
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		rec := serve(t, h, request{method: m, path: "/api/audit", key: "root"})
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /api/audit: status %d; want 405", m, rec.Code)
		}
	}
	if rec := serve(t, h, request{method: "DELETE", path: "/api/audit/a", key: "root"}); rec.Code != http.StatusNotFound {
		t.Errorf("DELETE /api/audit/a: status %d; want 404", rec.Code)
	}
	if len(acc.recorded()) != 3 {
		t.Errorf("the log has %d entries; want the 3 it had", len(acc.recorded()))
	}
}

// TestFailedAuthentication logs and counts each refusal without the
// presented credential.
func TestFailedAuthentication(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	counters := &auth.Counters{}
	h := api.New(api.Options{Backend: scopedBackend(), Auth: scopedAuth{}, Counters: counters,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	for _, key := range []string{"ck_wrong-key-0123456789", "expired", ""} {
		rec := serve(t, h, request{method: "GET", path: "/api/certificates", key: key})
		if rec.Code != 401 || rec.Body.Len() != 0 || rec.Header().Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("key %q: status %d, body %q, WWW-Authenticate %q", key, rec.Code, rec.Body, rec.Header().Get("WWW-Authenticate"))
		}
	}
	serve(t, h, request{method: "GET", path: "/api/certificates", key: "team"})
	out := logs.String()
	if strings.Contains(out, "ck_wrong-key") {
		t.Errorf("the log holds the presented key:\n%s", out)
	}
	if !strings.Contains(out, `"reason":"unknown_key"`) || !strings.Contains(out, `"key_name":"old"`) ||
		!strings.Contains(out, `"address":"192.0.2.1"`) {
		t.Errorf("the log lacks the failures' reasons, key name or address:\n%s", out)
	}
	if strings.Count(out, "authentication failed") != 2 {
		t.Errorf("want 2 warnings (a missing credential is not one):\n%s", out)
	}
	got := map[string]uint64{}
	for _, s := range counters.Samples() {
		if s.Value > 0 {
			got[s.Name+"/"+s.Labels["reason"]+s.Labels["method"]] = s.Value
		}
	}
	want := map[string]uint64{
		"certkeeper_auth_failures_total/unknown_key":        1,
		"certkeeper_auth_failures_total/expired_key":        1,
		"certkeeper_auth_failures_total/missing_credential": 1,
		"certkeeper_auth_successes_total/api_key":           1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
}
