package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

const (
	opID       = "0123456789abcdef0123456789abcdef"
	endpointLE = "https://acme-v02.api.letsencrypt.org/directory"
)

// fakeBackend records what the API asked and answers as configured.
type fakeBackend struct {
	mu        sync.Mutex
	issued    []certificate.Spec
	issueErr  error
	renewed   []string
	renewErr  error
	revoked   []revokeCall
	revokeErr error
	ops       map[string]operation.Operation
	opErr     error
	versions  []vault.Version
	certErr   error
	zones     []api.ZoneGroup
	panicking bool
}

type revokeCall struct {
	Name   string
	Reason int
}

var _ api.Backend = (*fakeBackend)(nil)

func (b *fakeBackend) Issue(ctx context.Context, spec certificate.Spec) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.panicking {
		panic("backend exploded")
	}
	if b.issueErr != nil {
		return "", b.issueErr
	}
	b.issued = append(b.issued, spec)
	return opID, nil
}

func (b *fakeBackend) Renew(ctx context.Context, name string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.renewErr != nil {
		return "", b.renewErr
	}
	b.renewed = append(b.renewed, name)
	return opID, nil
}

func (b *fakeBackend) Revoke(ctx context.Context, name string, reason int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.revokeErr != nil {
		return b.revokeErr
	}
	b.revoked = append(b.revoked, revokeCall{name, reason})
	return nil
}

func (b *fakeBackend) Operation(ctx context.Context, id string) (operation.Operation, error) {
	if b.opErr != nil {
		return operation.Operation{}, b.opErr
	}
	op, ok := b.ops[id]
	if !ok {
		return operation.Operation{}, api.ErrOperationNotFound
	}
	return op, nil
}

func (b *fakeBackend) Certificates(ctx context.Context) ([]vault.Version, error) {
	return b.versions, b.certErr
}

func (b *fakeBackend) Certificate(ctx context.Context, name string) (vault.Version, error) {
	if b.certErr != nil {
		return vault.Version{}, b.certErr
	}
	for _, v := range b.versions {
		if v.Name == name {
			return v, nil
		}
	}
	return vault.Version{}, vault.ErrNotFound
}

// CertificateSpec answers the spec of a stored version, or else one for
// <name>.example.com, so that renew and revoke reach the backend.
func (b *fakeBackend) CertificateSpec(ctx context.Context, name string) (certificate.Spec, error) {
	for _, v := range b.versions {
		if v.Name == name {
			return v.Spec, nil
		}
	}
	return certificate.Spec{Name: name, DNSNames: []string{name + ".example.com"}}, nil
}

func (b *fakeBackend) DNSZones(ctx context.Context) []api.ZoneGroup { return b.zones }

func (b *fakeBackend) ACMEEndpoint() string { return endpointLE }

// fakeAuth knows the keys "reader", "issuer", "revoker" and "admin", with
// roles required; "open" is a key without roles while roles are not
// required; "broken" makes the authenticator fail.
type fakeAuth struct{}

func (fakeAuth) Authenticate(r *http.Request) (auth.Principal, error) {
	key := r.Header.Get("X-Functions-Key")
	switch key {
	case "reader":
		return auth.Principal{Name: key, RequireRoles: true}, nil
	case "issuer":
		return auth.Principal{Name: key, Roles: []auth.Role{auth.RoleIssue}, RequireRoles: true}, nil
	case "revoker":
		return auth.Principal{Name: key, Roles: []auth.Role{auth.RoleRevoke}, RequireRoles: true}, nil
	case "admin":
		return auth.Principal{Name: key, Roles: []auth.Role{auth.RoleAdmin}, RequireRoles: true}, nil
	case "keyreader":
		return auth.Principal{Name: key, Roles: []auth.Role{auth.RoleReadCertificate}, RequireRoles: true}, nil
	case "open":
		return auth.Principal{Name: key}, nil
	case "broken":
		return auth.Principal{}, errors.New("token issuer unreachable")
	}
	return auth.Principal{}, auth.ErrUnauthenticated
}

// request is one HTTP request to the handler under test.
type request struct {
	method, path, body, key, contentType string
	header                               map[string]string
}

func serve(t *testing.T, h http.Handler, req request) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader = http.NoBody
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequestWithContext(t.Context(), req.method, "http://certkeeper.test"+req.path, body)
	if req.key != "" {
		r.Header.Set("X-Functions-Key", req.key)
	}
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s %s: Cache-Control = %q; want no-store", req.method, req.path, got)
	}
	return rec
}

var traceIDPattern = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-00$`)

// wantProblem checks that rec is a problem+json response with status and
// the body want (traceId checked for shape, then left out).
func wantProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, want map[string]any) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d; want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json; charset=utf-8" {
		t.Errorf("Content-Type = %q; want application/problem+json; charset=utf-8", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decoding problem %s: %v", rec.Body, err)
	}
	trace, _ := got["traceId"].(string)
	if !traceIDPattern.MatchString(trace) {
		t.Errorf("traceId = %q; want the W3C form", trace)
	}
	delete(got, "traceId")
	want = maps.Clone(want)
	want["status"] = float64(status)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problem mismatch (-want +got):\n%s", diff)
	}
}

// wantEmpty checks that rec has status and no body.
func wantEmpty(t *testing.T, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d; want %d; body %s", rec.Code, status, rec.Body)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("body = %q; want empty", rec.Body)
	}
}

func validationProblem(errs map[string][]string) map[string]any {
	m := map[string]any{}
	for k, v := range errs {
		msgs := make([]any, len(v))
		for i, s := range v {
			msgs[i] = s
		}
		m[k] = msgs
	}
	return map[string]any{
		"type":   "https://tools.ietf.org/html/rfc9110#section-15.5.1",
		"title":  "One or more validation errors occurred.",
		"errors": m,
	}
}

func newAPI(b *fakeBackend, publicURL string) http.Handler {
	return api.New(api.Options{Backend: b, Auth: fakeAuth{}, PublicURL: publicURL})
}

func TestAuthOrder(t *testing.T) {
	t.Parallel()
	invalid := `{"dnsNames":[]}`
	tests := []struct {
		name   string
		req    request
		status int
	}{
		{"no key, invalid body", request{method: "POST", path: "/api/certificate", body: invalid}, http.StatusUnauthorized},
		{"wrong key", request{method: "POST", path: "/api/certificate", body: invalid, key: "nope"}, http.StatusUnauthorized},
		{"reader issues", request{method: "POST", path: "/api/certificate", body: invalid, key: "reader"}, http.StatusForbidden},
		{"revoker issues", request{method: "POST", path: "/api/certificate", body: invalid, key: "revoker"}, http.StatusForbidden},
		{"revoker renews", request{method: "POST", path: "/api/certificate/a/renew", key: "revoker"}, http.StatusForbidden},
		{"issuer revokes", request{method: "POST", path: "/api/certificate/a/revoke", body: `{"reason":99}`, key: "issuer"}, http.StatusForbidden},
		{"reader revokes", request{method: "POST", path: "/api/certificate/a/revoke", key: "reader"}, http.StatusForbidden},
		{"no key lists", request{method: "GET", path: "/api/certificates"}, http.StatusUnauthorized},
		{"no key zones", request{method: "GET", path: "/api/dns-zones"}, http.StatusUnauthorized},
		{"no key state", request{method: "GET", path: "/api/state/bad"}, http.StatusUnauthorized},
		{"issuer, invalid body", request{method: "POST", path: "/api/certificate", body: invalid, key: "issuer"}, http.StatusBadRequest},
		{"admin, invalid body", request{method: "POST", path: "/api/certificate", body: invalid, key: "admin"}, http.StatusBadRequest},
		{"roles not required, invalid body", request{method: "POST", path: "/api/certificate", body: invalid, key: "open"}, http.StatusBadRequest},
		{"revoker, bad reason", request{method: "POST", path: "/api/certificate/a/revoke", body: `{"reason":99}`, key: "revoker"}, http.StatusBadRequest},
		{"reader, bad state id", request{method: "GET", path: "/api/state/bad", key: "reader"}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, newAPI(&fakeBackend{}, ""), tt.req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d; want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == http.StatusUnauthorized || tt.status == http.StatusForbidden {
				wantEmpty(t, rec, tt.status)
			}
			if tt.status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("WWW-Authenticate = %q; want Bearer", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestAuthenticatorFailure(t *testing.T) {
	t.Parallel()
	rec := serve(t, newAPI(&fakeBackend{}, ""), request{method: "GET", path: "/api/certificates", key: "broken"})
	wantProblem(t, rec, http.StatusInternalServerError, map[string]any{
		"type":  "https://tools.ietf.org/html/rfc9110#section-15.6.1",
		"title": "An error occurred while processing your request.",
	})
}

func TestLocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, publicURL, want string
		tls                   bool
	}{
		{name: "request host", want: "http://certkeeper.test/api/state/" + opID},
		{name: "tls", tls: true, want: "https://certkeeper.test/api/state/" + opID},
		{name: "public URL", publicURL: "https://certs.example.com/", want: "https://certs.example.com/api/state/" + opID},
		{name: "public URL with path", publicURL: "https://example.com/certkeeper", want: "https://example.com/certkeeper/api/state/" + opID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newAPI(&fakeBackend{}, tt.publicURL)
			r := httptest.NewRequestWithContext(t.Context(), "POST", "http://certkeeper.test/api/certificate/www-example-com/renew", http.NoBody)
			if tt.tls {
				r = httptest.NewRequestWithContext(t.Context(), "POST", "https://certkeeper.test/api/certificate/www-example-com/renew", http.NoBody)
			}
			r.Header.Set("X-Functions-Key", "issuer")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			wantEmpty(t, rec, http.StatusAccepted)
			if got := rec.Header().Get("Location"); got != tt.want {
				t.Errorf("Location = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		b := &fakeBackend{}
		rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate/www-example-com/renew", key: "issuer"})
		wantEmpty(t, rec, http.StatusAccepted)
		if got := rec.Header().Get("Location"); got != "http://certkeeper.test/api/state/"+opID {
			t.Errorf("Location = %q", got)
		}
		if diff := cmp.Diff([]string{"www-example-com"}, b.renewed); diff != "" {
			t.Errorf("renewed mismatch (-want +got):\n%s", diff)
		}
	})
	for _, tc := range []struct{ name, path, cert string }{
		{"unknown", "/api/certificate/nope/renew", "nope"},
		{"invalid name", "/api/certificate/a.b/renew", "a.b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBackend{renewErr: vault.ErrNotFound}
			rec := serve(t, newAPI(b, ""), request{method: "POST", path: tc.path, key: "issuer"})
			wantProblem(t, rec, http.StatusNotFound, map[string]any{
				"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5", "title": "Not Found",
				"detail": "The certificate '" + tc.cert + "' does not exist.",
			})
		})
	}
	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		b := &fakeBackend{renewErr: errors.New("reading stored spec: disk on fire")}
		rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate/x/renew", key: "issuer"})
		wantProblem(t, rec, http.StatusInternalServerError, map[string]any{
			"type": "https://tools.ietf.org/html/rfc9110#section-15.6.1", "title": "An error occurred while processing your request.",
			"detail": "reading stored spec: disk on fire",
		})
	})
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	valid := []struct {
		name, body, contentType string
		reason                  int
	}{
		{"no body", "", "", 0},
		{"empty object", "{}", "application/json", 0},
		{"null reason", `{"reason":null}`, "", 0},
		{"name", `{"reason":"keyCompromise"}`, "application/json", 1},
		{"name any case", `{"Reason":"SUPERSEDED"}`, "", 4},
		{"code", `{"reason":5}`, "", 5},
		{"numeric string", `{"reason":"3"}`, "", 3},
		{"unspecified", `{"reason":"unspecified"}`, "", 0},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBackend{}
			rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate/www-example-com/revoke", body: tt.body, key: "revoker", contentType: tt.contentType})
			wantEmpty(t, rec, http.StatusOK)
			if diff := cmp.Diff([]revokeCall{{"www-example-com", tt.reason}}, b.revoked); diff != "" {
				t.Errorf("revoked mismatch (-want +got):\n%s", diff)
			}
		})
	}
	reasonErr := validationProblem(map[string][]string{"Reason": {"The Reason must be one of unspecified (0), keyCompromise (1), affiliationChanged (3), superseded (4), or cessationOfOperation (5)."}})
	invalid := []struct {
		name, body string
		want       map[string]any
	}{
		{"unknown code", `{"reason":2}`, reasonErr},
		{"removeFromCRL", `{"reason":8}`, reasonErr},
		{"unknown name", `{"reason":"privilegeWithdrawn"}`, reasonErr},
		{"wrong type", `{"reason":[1]}`, reasonErr},
		{"not JSON", `reason=1`, validationProblem(map[string][]string{"$": {"The request body is not valid JSON: invalid character 'r' looking for beginning of value."}})},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBackend{}
			rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate/www-example-com/revoke", body: tt.body, key: "revoker"})
			wantProblem(t, rec, http.StatusBadRequest, tt.want)
			if len(b.revoked) != 0 {
				t.Errorf("revoked %v on an invalid request", b.revoked)
			}
		})
	}
	t.Run("unknown certificate", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, newAPI(&fakeBackend{revokeErr: vault.ErrNotFound}, ""), request{method: "POST", path: "/api/certificate/nope/revoke", key: "revoker"})
		wantProblem(t, rec, http.StatusNotFound, map[string]any{
			"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5", "title": "Not Found",
			"detail": "The certificate 'nope' does not exist.",
		})
	})
	t.Run("CA refused", func(t *testing.T) {
		t.Parallel()
		caErr := errors.New(`revoking certificate at the CA: urn:ietf:params:acme:error:alreadyRevoked: Certificate already revoked`)
		rec := serve(t, newAPI(&fakeBackend{revokeErr: caErr}, ""), request{method: "POST", path: "/api/certificate/www-example-com/revoke", key: "revoker"})
		wantProblem(t, rec, http.StatusInternalServerError, map[string]any{
			"type": "https://tools.ietf.org/html/rfc9110#section-15.6.1", "title": "An error occurred while processing your request.",
			"detail": caErr.Error(),
		})
	})
}

func TestState(t *testing.T) {
	t.Parallel()
	ops := map[string]operation.Operation{
		"00000000000000000000000000000001": {Status: operation.StatusPending},
		"00000000000000000000000000000002": {Status: operation.StatusRunning},
		"00000000000000000000000000000003": {Status: operation.StatusSucceeded, VersionID: "v1"},
		"00000000000000000000000000000004": {Status: operation.StatusFailed, FailedStep: operation.StepValidating,
			Error: `urn:ietf:params:acme:error:unauthorized: Incorrect TXT record "x" found at _acme-challenge.www.example.com`},
		"00000000000000000000000000000005": {Status: operation.StatusFailed, Error: "no DNS zone matches www.example.org"},
		"00000000000000000000000000000006": {Status: "weird"},
	}
	internal := func(detail string) map[string]any {
		m := map[string]any{"type": "https://tools.ietf.org/html/rfc9110#section-15.6.1", "title": "An error occurred while processing your request."}
		if detail != "" {
			m["detail"] = detail
		}
		return m
	}
	unknown := func(id string) map[string]any {
		return map[string]any{"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1", "title": "Bad Request",
			"detail": "The operation '" + id + "' does not exist."}
	}
	tests := []struct {
		id     string
		status int
		want   map[string]any // nil: empty body
	}{
		{"00000000000000000000000000000001", http.StatusAccepted, nil},
		{"00000000000000000000000000000002", http.StatusAccepted, nil},
		{"00000000000000000000000000000003", http.StatusOK, nil},
		{"00000000000000000000000000000004", http.StatusInternalServerError, internal(`validating: urn:ietf:params:acme:error:unauthorized: Incorrect TXT record "x" found at _acme-challenge.www.example.com`)},
		{"00000000000000000000000000000005", http.StatusInternalServerError, internal("no DNS zone matches www.example.org")},
		{"00000000000000000000000000000006", http.StatusInternalServerError, internal("")},
		{"0000000000000000000000000000000f", http.StatusBadRequest, unknown("0000000000000000000000000000000f")},
		{"not-an-id", http.StatusBadRequest, unknown("not-an-id")},
		{"0000000000000000000000000000000A", http.StatusBadRequest, unknown("0000000000000000000000000000000A")},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			check := func(t *testing.T, h http.Handler) {
				rec := serve(t, h, request{method: "GET", path: "/api/state/" + tt.id, key: "reader"})
				if tt.want != nil {
					wantProblem(t, rec, tt.status, tt.want)
					return
				}
				wantEmpty(t, rec, tt.status)
				wantLoc := ""
				if tt.status == http.StatusAccepted {
					wantLoc = "https://certs.example.com/api/state/" + tt.id
				}
				if got := rec.Header().Get("Location"); got != wantLoc {
					t.Errorf("Location = %q; want %q", got, wantLoc)
				}
			}
			check(t, newAPI(&fakeBackend{ops: ops}, "https://certs.example.com"))
			// A Backend that reads statuses alone answers the same, and
			// the route does not read the whole operation from it.
			sb := &statusBackend{fakeBackend: &fakeBackend{opErr: errors.New("operation read whole")}, ops: ops}
			check(t, api.New(api.Options{Backend: sb, Auth: fakeAuth{}, PublicURL: "https://certs.example.com"}))
		})
	}
	t.Run("backend failure", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, newAPI(&fakeBackend{opErr: errors.New("database closed")}, ""), request{method: "GET", path: "/api/state/" + opID, key: "reader"})
		wantProblem(t, rec, http.StatusInternalServerError, internal(""))
	})
}

// statusBackend is a fakeBackend that also implements
// api.OperationStatusReader over ops.
type statusBackend struct {
	*fakeBackend
	ops map[string]operation.Operation
}

var _ api.OperationStatusReader = (*statusBackend)(nil)

func (b *statusBackend) OperationStatus(ctx context.Context, id string) (operation.Operation, error) {
	op, ok := b.ops[id]
	if !ok {
		return operation.Operation{}, api.ErrOperationNotFound
	}
	op.Steps = nil
	return op, nil
}

func TestCertificates(t *testing.T) {
	t.Parallel()
	revokedAt := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	b := &fakeBackend{versions: []vault.Version{
		{
			ID: "aa", Name: "www-example-com", ACMEEndpoint: endpointLE, Serial: "03ab", Thumbprint: "ABCDEF",
			Spec:      certificate.Spec{Name: "www-example-com", DNSNames: []string{"www.example.com"}, DNSProviderName: "Cloudflare", KeyType: "RSA", KeySize: 2048},
			CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 500, time.UTC), NotBefore: time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC),
			NotAfter: time.Date(2099, 4, 1, 0, 0, 0, 0, time.UTC),
		},
		{
			ID: "bb", Name: "wildcard-example-org", ACMEEndpoint: "https://localhost:14000/dir", Serial: "04", Thumbprint: "0123",
			Spec: certificate.Spec{Name: "wildcard-example-org", DNSNames: []string{"*.example.org", "example.org"}, KeyType: "EC",
				KeyCurveName: "P-384", ReuseKey: true, DNSAlias: "alias.example.net"},
			CreatedAt: time.Date(2020, 1, 1, 12, 30, 15, 0, time.FixedZone("CET", 3600)),
			NotAfter:  time.Date(2020, 4, 1, 0, 0, 0, 0, time.UTC), RevokedAt: &revokedAt,
		},
	}}
	rec := serve(t, newAPI(b, ""), request{method: "GET", path: "/api/certificates", key: "reader"})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := `[{"id":"aa","name":"www-example-com","dnsNames":["www.example.com"],"dnsProviderName":"Cloudflare",` +
		`"createdOn":"2026-01-01T00:00:00+00:00","expiresOn":"2099-04-01T00:00:00+00:00","x509Thumbprint":"ABCDEF",` +
		`"keyType":"RSA","keySize":2048,"keyCurveName":null,"reuseKey":false,"isExpired":false,"isIssuedByAcmebot":true,` +
		`"isSameEndpoint":true,"acmeEndpoint":"acme-v02.api.letsencrypt.org","dnsAlias":"","serialNumber":"03ab","revoked":false},` +
		`{"id":"bb","name":"wildcard-example-org","dnsNames":["*.example.org","example.org"],"dnsProviderName":"",` +
		`"createdOn":"2020-01-01T11:30:15+00:00","expiresOn":"2020-04-01T00:00:00+00:00","x509Thumbprint":"0123",` +
		`"keyType":"EC","keySize":null,"keyCurveName":"P-384","reuseKey":true,"isExpired":true,"isIssuedByAcmebot":true,` +
		`"isSameEndpoint":false,"acmeEndpoint":"localhost","dnsAlias":"alias.example.net","serialNumber":"04","revoked":true}]`
	if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}

	t.Run("empty is []", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, newAPI(&fakeBackend{}, ""), request{method: "GET", path: "/api/certificates", key: "reader"})
		if rec.Code != http.StatusOK || rec.Body.String() != "[]" {
			t.Errorf("got %d %q; want 200 []", rec.Code, rec.Body)
		}
	})
	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, newAPI(&fakeBackend{certErr: errors.New("password=hunter2 rejected")}, ""), request{method: "GET", path: "/api/certificates", key: "reader"})
		wantProblem(t, rec, http.StatusInternalServerError, map[string]any{
			"type": "https://tools.ietf.org/html/rfc9110#section-15.6.1", "title": "An error occurred while processing your request.",
		})
	})
}

func TestDNSZones(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{zones: []api.ZoneGroup{
		{ProviderName: "Cloudflare", Zones: []string{"example.com", "example.org"}},
		{ProviderName: "Broken", Err: errors.New("listing zones: 403 Forbidden")},
		{ProviderName: "Empty"},
	}}
	rec := serve(t, newAPI(b, ""), request{method: "GET", path: "/api/dns-zones", key: "reader"})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := `[{"dnsProviderName":"Cloudflare","dnsZones":[{"name":"example.com"},{"name":"example.org"}]},` +
		`{"dnsProviderName":"Broken","dnsZones":[],"error":"listing zones: 403 Forbidden"},{"dnsProviderName":"Empty","dnsZones":[]}]`
	if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}
	rec = serve(t, newAPI(&fakeBackend{}, ""), request{method: "GET", path: "/api/dns-zones", key: "reader"})
	if rec.Body.String() != "[]" {
		t.Errorf("no providers: body = %q; want []", rec.Body)
	}
}

func TestPingAndRouting(t *testing.T) {
	t.Parallel()
	h := newAPI(&fakeBackend{}, "")
	rec := serve(t, h, request{method: "GET", path: "/api/ping"})
	if rec.Code != http.StatusOK || rec.Body.String() != `{"status":"ok"}` || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("ping: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	rec = serve(t, h, request{method: "GET", path: "/api/nothing", key: "admin"})
	wantProblem(t, rec, http.StatusNotFound, map[string]any{
		"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5", "title": "Not Found",
		"detail": "There is no resource at /api/nothing.",
	})
	rec = serve(t, h, request{method: "DELETE", path: "/api/certificates"})
	wantProblem(t, rec, http.StatusMethodNotAllowed, map[string]any{
		"type": "https://tools.ietf.org/html/rfc9110#section-15.5.6", "title": "Method Not Allowed",
		"detail": "The method DELETE is not allowed on /api/certificates.",
	})
	if got := rec.Header().Get("Allow"); got != "GET, HEAD, POST" {
		t.Errorf("Allow = %q; want GET, HEAD, POST", got)
	}
	rec = serve(t, h, request{method: "GET", path: "/api/certificate"})
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET /api/certificate: %d Allow %q; want 405 POST", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestRouteSetBAliases(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	h := newAPI(b, "")
	rec := serve(t, h, request{method: "POST", path: "/api/certificates", body: `{"dnsNames":["a.example.com"]}`, key: "issuer"})
	wantEmpty(t, rec, http.StatusAccepted)
	rec = serve(t, h, request{method: "POST", path: "/api/certificates/a-example-com/renew", key: "issuer"})
	wantEmpty(t, rec, http.StatusAccepted)
	rec = serve(t, h, request{method: "POST", path: "/api/certificates/a-example-com/revoke", key: "revoker"})
	wantEmpty(t, rec, http.StatusOK)
	rec = serve(t, h, request{method: "POST", path: "/api/certificates/a-example-com/revoke", key: "issuer"})
	wantEmpty(t, rec, http.StatusForbidden)
	if len(b.issued) != 1 || len(b.renewed) != 1 || len(b.revoked) != 1 {
		t.Errorf("backend calls: issued %d renewed %d revoked %d; want 1 each", len(b.issued), len(b.renewed), len(b.revoked))
	}
}

func TestTraceID(t *testing.T) {
	t.Parallel()
	h := newAPI(&fakeBackend{}, "")
	tests := []struct {
		name, traceparent, wantPrefix string
	}{
		{"valid", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-"},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"uppercase", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""},
		{"garbage", "hello", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, h, request{method: "GET", path: "/api/state/x", key: "reader", header: map[string]string{"traceparent": tt.traceparent}})
			var p struct{ TraceID string }
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if !traceIDPattern.MatchString(p.TraceID) {
				t.Fatalf("traceId = %q; want the W3C form", p.TraceID)
			}
			if tt.wantPrefix != "" && !strings.HasPrefix(p.TraceID, tt.wantPrefix) {
				t.Errorf("traceId = %q; want the incoming trace id", p.TraceID)
			}
			if tt.wantPrefix == "" && strings.Contains(tt.traceparent, p.TraceID[3:35]) {
				t.Errorf("traceId = %q reuses an invalid traceparent", p.TraceID)
			}
		})
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := api.New(api.Options{Backend: &fakeBackend{certErr: errors.New("listing failed")}, Auth: fakeAuth{}, Logger: logger})
	r := httptest.NewRequestWithContext(t.Context(), "GET", "http://certkeeper.test/api/certificates?code=s3cr3t-key", http.NoBody)
	r.Header.Set("X-Functions-Key", "reader")
	h.ServeHTTP(httptest.NewRecorder(), r)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if strings.Contains(out, "s3cr3t-key") {
		t.Errorf("log contains the query string:\n%s", out)
	}
	for _, want := range []string{"msg=request method=GET path=/api/certificates status=500", "level=ERROR msg=\"request failed\"", "listing failed", "trace_id="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
