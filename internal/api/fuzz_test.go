package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/certificate"
)

// FuzzIssueRequest feeds arbitrary bodies to POST /api/certificate with a
// backend that always succeeds. The handler must never answer 5xx (a panic
// is recovered into a 500, so this also catches panics), must answer 400
// with a validation problem or 202, and every spec it passes on must hold
// the invariants the rest of certkeeper relies on.
func FuzzIssueRequest(f *testing.F) {
	for _, s := range []string{
		`{"dnsNames":["www.example.com"]}`,
		`{"DnsNames":["*.Example.com.","bücher.example"],"keyType":"EC","keyCurveName":"P-384"}`,
		`{"dnsNames":["a.example.com"],"keySize":"4096","reuseKey":"true","tags":{"a":"b"},"dnsAlias":"x.example.net","profile":"classic"}`,
		`{"dnsNames":["a.example.com"],"keySize":2048.0,"certificateName":"my-cert"}`,
		`{"dnsNames":[1,null,"a..b"],"keySize":1e400}`,
		`{"dnsNames":["a.example.com"],"keySize":-9223372036854775809}`,
		`{"dnsNames":["a.example.com"],"ca":["le","zerossl"],"preferredChain":"ISRG Root X1"}`,
		`{"dnsNames":["a.example.com"],"ca":"x y","preferredChain":"\u0000"}`,
		`[]`, `null`, `{`, `{"a":1} x`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		b := &fakeBackend{}
		h := api.New(api.Options{Backend: b, Auth: fakeAuth{}})
		r := httptest.NewRequest("POST", "http://certkeeper.test/api/certificate", strings.NewReader(body))
		r.Header.Set("X-Functions-Key", "issuer")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		switch rec.Code {
		case http.StatusAccepted:
			if len(b.issued) != 1 {
				t.Fatalf("202 but backend got %d specs", len(b.issued))
			}
			checkSpec(t, b.issued[0])
		case http.StatusBadRequest:
			var p struct {
				Title  string
				Errors map[string][]string
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("400 body %q is not JSON: %v", rec.Body, err)
			}
			if p.Title != "One or more validation errors occurred." || len(p.Errors) == 0 {
				t.Fatalf("400 body %q is not a validation problem", rec.Body)
			}
			if len(b.issued) != 0 {
				t.Fatalf("400 but backend got %v", b.issued)
			}
		default:
			t.Fatalf("body %q: status %d, body %s", body, rec.Code, rec.Body)
		}
	})
}

func checkSpec(t *testing.T, spec certificate.Spec) {
	t.Helper()
	if !certificate.NamePattern.MatchString(spec.Name) {
		t.Fatalf("spec name %q does not match NamePattern", spec.Name)
	}
	if n := len(spec.DNSNames); n == 0 || n > 100 {
		t.Fatalf("spec has %d DNS names", n)
	}
	seen := map[string]bool{}
	for _, name := range spec.DNSNames {
		norm, err := certificate.NormalizeDNSName(name)
		if err != nil || norm != name {
			t.Fatalf("spec DNS name %q is not normalised: %q, %v", name, norm, err)
		}
		if seen[name] {
			t.Fatalf("spec DNS name %q appears twice", name)
		}
		seen[name] = true
	}
	switch spec.KeyType {
	case certificate.KeyTypeRSA:
		if !slices.Contains([]int{2048, 3072, 4096}, spec.KeySize) || spec.KeyCurveName != "" {
			t.Fatalf("RSA spec with size %d curve %q", spec.KeySize, spec.KeyCurveName)
		}
	case certificate.KeyTypeEC:
		if !slices.Contains([]string{"P-256", "P-384", "P-521"}, spec.KeyCurveName) || spec.KeySize != 0 {
			t.Fatalf("EC spec with size %d curve %q", spec.KeySize, spec.KeyCurveName)
		}
	default:
		t.Fatalf("spec key type %q", spec.KeyType)
	}
	if len(spec.CA) > 10 || slices.ContainsFunc(spec.CA, func(n string) bool { return n == "" || strings.ContainsAny(n, " /?#\x00") }) {
		t.Fatalf("spec CA list %q", spec.CA)
	}
	if len([]rune(spec.PreferredChain)) > 128 || strings.ContainsFunc(spec.PreferredChain, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		t.Fatalf("spec preferred chain %q", spec.PreferredChain)
	}
	if spec.DNSAlias != "" {
		if norm, err := certificate.NormalizeDNSName(spec.DNSAlias); err != nil || norm != spec.DNSAlias || strings.HasPrefix(norm, "*") {
			t.Fatalf("spec DNS alias %q is not a normalised non-wildcard name", spec.DNSAlias)
		}
	}
}

// FuzzBulkRevokeRequest feeds arbitrary bodies to POST
// /api/certificates/revoke. It must answer 400 with a validation problem, or
// 200 having asked to revoke only well-formed, distinct names with a valid
// reason code, never anything else.
func FuzzBulkRevokeRequest(f *testing.F) {
	for _, s := range []string{
		`{"names":["a","b"],"reason":"keyCompromise"}`,
		`{"names":["a"],"reason":"4"}`,
		`{"Names":["a","a"],"reason":7}`,
		`{"names":"a"}`, `{"names":[null,1]}`, `[]`, `{`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		b := &fakeBackend{}
		h := api.New(api.Options{Backend: b, Auth: fakeAuth{}})
		r := httptest.NewRequest("POST", "http://certkeeper.test/api/certificates/revoke", strings.NewReader(body))
		r.Header.Set("X-Functions-Key", "revoker")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		switch rec.Code {
		case http.StatusOK:
			seen := map[string]bool{}
			if len(b.revoked) == 0 || len(b.revoked) > 100 {
				t.Fatalf("200 after %d revocations", len(b.revoked))
			}
			for _, c := range b.revoked {
				if !certificate.NamePattern.MatchString(c.Name) || seen[c.Name] || !slices.Contains([]int{0, 1, 3, 4, 5}, c.Reason) {
					t.Fatalf("revoked %+v", b.revoked)
				}
				seen[c.Name] = true
			}
		case http.StatusBadRequest:
			if len(b.revoked) != 0 {
				t.Fatalf("400 but revoked %v", b.revoked)
			}
		default:
			t.Fatalf("body %q: status %d, body %s", body, rec.Code, rec.Body)
		}
	})
}
