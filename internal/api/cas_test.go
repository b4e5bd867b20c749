package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// fakeCABackend is a fakeBackend that also serves the routes for several
// CAs.
type fakeCABackend struct {
	*fakeBackend

	mu         sync.Mutex
	dryRuns    []certificate.Spec
	report     api.DryRunReport
	dryRunErr  error
	accounts   []string // CA names asked for
	rollovers  []string
	replaced   []revokeCall
	replaceErr error
	revokeErrs map[string]error
}

var _ api.CABackend = (*fakeCABackend)(nil)

func (b *fakeCABackend) DryRun(ctx context.Context, spec certificate.Spec) (api.DryRunReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dryRuns = append(b.dryRuns, spec)
	return b.report, b.dryRunErr
}

func (b *fakeCABackend) account(ca string) (api.AccountInfo, error) {
	switch ca {
	case "", "le":
		return api.AccountInfo{CA: "le", AccountURI: "https://ca.test/acct/1", DirectoryURL: endpointLE,
			CAAIdentities: []string{"letsencrypt.org"}}, nil
	case "down":
		return api.AccountInfo{}, errors.New("reading ACME directory https://down.test/dir: connection refused")
	}
	return api.AccountInfo{}, fmt.Errorf("%w: %q (configured: le, down)", api.ErrUnknownCA, ca)
}

func (b *fakeCABackend) Account(ctx context.Context, ca string) (api.AccountInfo, error) {
	b.mu.Lock()
	b.accounts = append(b.accounts, ca)
	b.mu.Unlock()
	return b.account(ca)
}

func (b *fakeCABackend) RolloverAccount(ctx context.Context, ca string) (api.AccountInfo, error) {
	b.mu.Lock()
	b.rollovers = append(b.rollovers, ca)
	b.mu.Unlock()
	return b.account(ca)
}

func (b *fakeCABackend) Replace(ctx context.Context, name string, reason int) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.replaceErr != nil {
		return "", b.replaceErr
	}
	b.replaced = append(b.replaced, revokeCall{name, reason})
	return opID, nil
}

func (b *fakeCABackend) Revoke(ctx context.Context, name string, reason int) error {
	if err := b.revokeErrs[name]; err != nil {
		return err
	}
	return b.fakeBackend.Revoke(ctx, name, reason)
}

func (b *fakeCABackend) CAEndpoints() []string {
	return []string{endpointLE, "https://acme.zerossl.com/v2/DV90"}
}

func newCAAPI(b *fakeCABackend) http.Handler {
	return api.New(api.Options{Backend: b, Auth: fakeAuth{}})
}

func TestIssueCAFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		want     certificate.Spec
		wantErrs map[string][]string
	}{
		{
			name: "one CA and a preferred chain",
			body: `{"dnsNames":["a.example.com"],"ca":"zerossl","preferredChain":" ISRG Root X1 "}`,
			want: certificate.Spec{Name: "a-example-com", DNSNames: []string{"a.example.com"}, KeyType: "RSA", KeySize: 2048,
				CA: []string{"zerossl"}, PreferredChain: "ISRG Root X1"},
		},
		{
			name: "a list of CAs",
			body: `{"dnsNames":["a.example.com"],"Ca":["le","zerossl"]}`,
			want: certificate.Spec{Name: "a-example-com", DNSNames: []string{"a.example.com"}, KeyType: "RSA", KeySize: 2048,
				CA: []string{"le", "zerossl"}},
		},
		{
			name: "empty CA",
			body: `{"dnsNames":["a.example.com"],"ca":"","preferredChain":null}`,
			want: certificate.Spec{Name: "a-example-com", DNSNames: []string{"a.example.com"}, KeyType: "RSA", KeySize: 2048},
		},
		{
			name:     "bad CA values",
			body:     `{"dnsNames":["a.example.com"],"ca":["ok","not a name"],"preferredChain":7}`,
			wantErrs: map[string][]string{"Ca": {"The Ca 'not a name' is not a CA name."}, "PreferredChain": {"The PreferredChain must be a string."}},
		},
		{
			name:     "CA of the wrong type",
			body:     `{"dnsNames":["a.example.com"],"ca":{"name":"le"}}`,
			wantErrs: map[string][]string{"Ca": {"The Ca must be a CA name or an array of CA names."}},
		},
		{
			name:     "too many CAs",
			body:     `{"dnsNames":["a.example.com"],"ca":["a","b","c","d","e","f","g","h","i","j","k"]}`,
			wantErrs: map[string][]string{"Ca": {"The Ca must name at most 10 CAs."}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBackend{}
			rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate", body: tt.body, key: "issuer"})
			if tt.wantErrs != nil {
				wantProblem(t, rec, http.StatusBadRequest, validationProblem(tt.wantErrs))
				return
			}
			if rec.Code != http.StatusAccepted || len(b.issued) != 1 {
				t.Fatalf("status %d, issued %v; body %s", rec.Code, b.issued, rec.Body)
			}
			if diff := cmp.Diff(tt.want, b.issued[0]); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	report := api.DryRunReport{OK: false, Checks: []api.DryRunCheck{
		{Check: "zone", Subject: "a.example.com", Status: api.CheckPassed, Detail: "in zone example.com of DNS provider BIND"},
		{Check: "caa", Subject: "a.example.com", CA: "le", Status: api.CheckFailed, Detail: `example.com. CAA 0 issue ";" does not name this CA`},
	}}
	for _, q := range []string{"?dryRun=true", "?dryrun=1", "?DryRun=TRUE", "?dryRun"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			b := &fakeCABackend{fakeBackend: &fakeBackend{}, report: report}
			rec := serve(t, newCAAPI(b), request{method: "POST", path: "/api/certificate" + q, body: `{"dnsNames":["a.example.com"],"ca":"le"}`, key: "issuer"})
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var got api.DryRunReport
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(report, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if len(b.issued) != 0 || len(b.dryRuns) != 1 || b.dryRuns[0].CA[0] != "le" {
				t.Errorf("issued %v, dry runs %v; want one dry run and no issue", b.issued, b.dryRuns)
			}
		})
	}
	t.Run("dryRun=false issues", func(t *testing.T) {
		t.Parallel()
		b := &fakeCABackend{fakeBackend: &fakeBackend{}}
		rec := serve(t, newCAAPI(b), request{method: "POST", path: "/api/certificate?dryRun=false", body: `{"dnsNames":["a.example.com"]}`, key: "issuer"})
		if rec.Code != http.StatusAccepted || len(b.dryRuns) != 0 {
			t.Errorf("status %d, dry runs %d", rec.Code, len(b.dryRuns))
		}
	})
	t.Run("invalid body is still a 400", func(t *testing.T) {
		t.Parallel()
		b := &fakeCABackend{fakeBackend: &fakeBackend{}}
		rec := serve(t, newCAAPI(b), request{method: "POST", path: "/api/certificate?dryRun=true", body: `{"dnsNames":[]}`, key: "issuer"})
		wantProblem(t, rec, http.StatusBadRequest, validationProblem(map[string][]string{"DnsNames": {"The DnsNames is required."}}))
	})
	t.Run("backend without CABackend", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, newAPI(&fakeBackend{}, ""), request{method: "POST", path: "/api/certificate?dryRun=true", body: `{"dnsNames":["a.example.com"]}`, key: "issuer"})
		if rec.Code != http.StatusNotFound {
			t.Errorf("status %d; want 404", rec.Code)
		}
	})
	t.Run("reader may not", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, newCAAPI(&fakeCABackend{fakeBackend: &fakeBackend{}}), request{method: "POST", path: "/api/certificate?dryRun=true", body: `{"dnsNames":["a.example.com"]}`, key: "reader"})
		wantEmpty(t, rec, http.StatusForbidden)
	})
}

func TestAccountRoutes(t *testing.T) {
	t.Parallel()
	le := map[string]any{"ca": "le", "accountUri": "https://ca.test/acct/1", "directoryUrl": endpointLE,
		"caaIdentities": []any{"letsencrypt.org"}}
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantBody   map[string]any
		wantDetail string
	}{
		{"default CA", request{method: "GET", path: "/api/account", key: "reader"}, http.StatusOK, le, ""},
		{"named CA", request{method: "GET", path: "/api/account?ca=le", key: "reader"}, http.StatusOK, le, ""},
		{"unknown CA", request{method: "GET", path: "/api/account?ca=nope", key: "reader"}, http.StatusNotFound, nil,
			`CA not configured: "nope" (configured: le, down)`},
		{"CA down", request{method: "GET", path: "/api/account?ca=down", key: "reader"}, http.StatusInternalServerError, nil,
			"reading ACME directory https://down.test/dir: connection refused"},
		{"rollover", request{method: "POST", path: "/api/account/rollover?ca=le", key: "admin"}, http.StatusOK, le, ""},
		{"rollover needs admin", request{method: "POST", path: "/api/account/rollover?ca=le", key: "issuer"}, http.StatusForbidden, nil, ""},
		{"rollover of an unknown CA", request{method: "POST", path: "/api/account/rollover?ca=x", key: "admin"}, http.StatusNotFound, nil,
			`CA not configured: "x" (configured: le, down)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeCABackend{fakeBackend: &fakeBackend{}}
			rec := serve(t, newCAAPI(b), tt.req)
			switch {
			case tt.wantBody != nil:
				if rec.Code != tt.wantStatus {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				var got map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantBody, got); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			case tt.wantDetail != "":
				wantProblem(t, rec, tt.wantStatus, map[string]any{"type": problemType(tt.wantStatus), "title": problemTitle(tt.wantStatus),
					"detail": tt.wantDetail})
			default:
				wantEmpty(t, rec, tt.wantStatus)
			}
		})
	}
}

func problemType(status int) string {
	if status == http.StatusNotFound {
		return "https://tools.ietf.org/html/rfc9110#section-15.5.5"
	}
	return "https://tools.ietf.org/html/rfc9110#section-15.6.1"
}

func problemTitle(status int) string {
	if status == http.StatusNotFound {
		return "Not Found"
	}
	return "An error occurred while processing your request."
}

func TestBulkRevoke(t *testing.T) {
	t.Parallel()
	t.Run("every certificate revoked", func(t *testing.T) {
		t.Parallel()
		b := &fakeCABackend{fakeBackend: &fakeBackend{}}
		rec := serve(t, newCAAPI(b), request{method: "POST", path: "/api/certificates/revoke",
			body: `{"names":["a","b"],"reason":"keyCompromise"}`, key: "revoker"})
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		want := `{"reason":1,"revoked":2,"failed":0,"results":[{"name":"a","status":"revoked"},{"name":"b","status":"revoked"}]}`
		if rec.Body.String() != want {
			t.Errorf("body %s\nwant %s", rec.Body, want)
		}
		if diff := cmp.Diff([]revokeCall{{"a", 1}, {"b", 1}}, b.revoked); diff != "" {
			t.Errorf("revoked (-want +got):\n%s", diff)
		}
	})
	t.Run("some not revoked", func(t *testing.T) {
		t.Parallel()
		b := &fakeCABackend{fakeBackend: &fakeBackend{}, revokeErrs: map[string]error{
			"gone": vault.ErrNotFound, "refused": errors.New("CA answered urn:ietf:params:acme:error:unauthorized: no"),
		}}
		rec := serve(t, newCAAPI(b), request{method: "POST", path: "/api/certificates/revoke",
			body: `{"names":["gone","ok","refused"]}`, key: "revoker"})
		if rec.Code != http.StatusMultiStatus {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		want := `{"reason":0,"revoked":1,"failed":2,"results":[{"name":"gone","status":"notFound","error":"The certificate 'gone' does not exist."},` +
			`{"name":"ok","status":"revoked"},{"name":"refused","status":"failed","error":"CA answered urn:ietf:params:acme:error:unauthorized: no"}]}`
		if rec.Body.String() != want {
			t.Errorf("body %s\nwant %s", rec.Body, want)
		}
	})
	for _, tt := range []struct {
		name, body string
		errs       map[string][]string
	}{
		{"no names", `{"reason":4}`, map[string][]string{"Names": {"The Names is required."}}},
		{"empty names", `{"names":[]}`, map[string][]string{"Names": {"The Names is required."}}},
		{"names not an array", `{"names":"a"}`, map[string][]string{"Names": {"The Names must be an array of certificate names."}}},
		{"bad and repeated names", `{"names":["a","a","x y"],"reason":"nope"}`, map[string][]string{
			"Names":  {"The Names has 'a' more than once.", "The Names entry 'x y' is not a certificate name."},
			"Reason": {"The Reason must be one of unspecified (0), keyCompromise (1), affiliationChanged (3), superseded (4), or cessationOfOperation (5)."},
		}},
		{"not an object", `[1]`, map[string][]string{"$": {"The request body must be a JSON object."}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeCABackend{fakeBackend: &fakeBackend{}}
			rec := serve(t, newCAAPI(b), request{method: "POST", path: "/api/certificates/revoke", body: tt.body, key: "revoker"})
			wantProblem(t, rec, http.StatusBadRequest, validationProblem(tt.errs))
			if len(b.revoked) != 0 {
				t.Errorf("revoked %v", b.revoked)
			}
		})
	}
	t.Run("issuer may not", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, newCAAPI(&fakeCABackend{fakeBackend: &fakeBackend{}}), request{method: "POST", path: "/api/certificates/revoke",
			body: `{"names":["a"]}`, key: "issuer"})
		wantEmpty(t, rec, http.StatusForbidden)
	})
}

func TestReplace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		path, body string
		key        string
		err        error
		wantStatus int
		wantCall   []revokeCall
	}{
		{"default reason keyCompromise", "/api/certificate/www-example-com/replace", "", "admin", nil, http.StatusAccepted, []revokeCall{{"www-example-com", 1}}},
		{"route set B, reason given", "/api/certificates/www-example-com/replace", `{"reason":"superseded"}`, "admin", nil, http.StatusAccepted, []revokeCall{{"www-example-com", 4}}},
		{"empty object", "/api/certificate/a/replace", `{}`, "open", nil, http.StatusAccepted, []revokeCall{{"a", 1}}},
		{"issuer without revoke role", "/api/certificate/a/replace", "", "issuer", nil, http.StatusForbidden, nil},
		{"revoker without issue role", "/api/certificate/a/replace", "", "revoker", nil, http.StatusForbidden, nil},
		{"unknown certificate", "/api/certificate/nope/replace", "", "admin", vault.ErrNotFound, http.StatusNotFound, nil},
		{"bad reason", "/api/certificate/a/replace", `{"reason":7}`, "admin", nil, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeCABackend{fakeBackend: &fakeBackend{}, replaceErr: tt.err}
			rec := serve(t, newCAAPI(b), request{method: "POST", path: tt.path, body: tt.body, key: tt.key})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d; want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == http.StatusAccepted && rec.Header().Get("Location") != "http://certkeeper.test/api/state/"+opID {
				t.Errorf("Location = %q", rec.Header().Get("Location"))
			}
			if diff := cmp.Diff(tt.wantCall, b.replaced); diff != "" {
				t.Errorf("replace calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCertificatesOfSeveralCAs(t *testing.T) {
	t.Parallel()
	now := time.Now()
	b := &fakeCABackend{fakeBackend: &fakeBackend{versions: []vault.Version{
		{ID: "1", Name: "a", ACMEEndpoint: "https://acme.zerossl.com/v2/DV90", CA: "zerossl", NotAfter: now.Add(time.Hour)},
		{ID: "2", Name: "b", ACMEEndpoint: "https://old.example/dir", NotAfter: now.Add(time.Hour)},
	}}}
	rec := serve(t, newCAAPI(b), request{method: "GET", path: "/api/certificates", key: "reader"})
	var items []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil {
		t.Fatal(err)
	}
	if items[0]["isSameEndpoint"] != true || items[0]["ca"] != "zerossl" || items[1]["isSameEndpoint"] != false || items[1]["ca"] != nil {
		t.Errorf("items %v; want the first from a configured CA and named, the second from none", items)
	}
}
