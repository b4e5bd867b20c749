package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/certificate"
)

func TestIssueValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want certificate.Spec
	}{
		{
			name: "defaults",
			body: `{"dnsNames":["www.example.com"]}`,
			want: certificate.Spec{Name: "www-example-com", DNSNames: []string{"www.example.com"}, KeyType: "RSA", KeySize: 2048},
		},
		{
			name: "PascalCase keys, wildcard, Unicode, trailing dot",
			body: `{"DnsNames":["*.Example.com.","bücher.example"],"KEYTYPE":"ec"}`,
			want: certificate.Spec{Name: "wildcard-example-com", DNSNames: []string{"*.example.com", "xn--bcher-kva.example"}, KeyType: "EC", KeyCurveName: "P-256"},
		},
		{
			name: "numeric strings and string booleans",
			body: `{"dnsNames":["a.example.com"],"keySize":"4096","reuseKey":"true","keyCurveName":"P-384"}`,
			want: certificate.Spec{Name: "a-example-com", DNSNames: []string{"a.example.com"}, KeyType: "RSA", KeySize: 4096, ReuseKey: true},
		},
		{
			name: "everything",
			body: `{"dnsNames":["a.example.com","b.example.com"],"certificateName":"My-Cert","dnsProviderName":"Cloudflare",
				"keyType":"EC","keySize":2048,"keyCurveName":"p-521","reuseKey":false,"dnsAlias":"Alias.Example.NET.",
				"profile":"shortlived","tags":{"team":"web"},"unknownField":[1,2]}`,
			want: certificate.Spec{Name: "My-Cert", DNSNames: []string{"a.example.com", "b.example.com"}, DNSProviderName: "Cloudflare",
				KeyType: "EC", KeyCurveName: "P-521", DNSAlias: "alias.example.net", Profile: "shortlived", Tags: map[string]string{"team": "web"}},
		},
		{
			name: "nulls and empty strings are absent",
			body: `{"dnsNames":["a.example.com"],"certificateName":null,"keyType":"","keySize":"","keyCurveName":null,"reuseKey":null,"dnsAlias":"","profile":null,"tags":null}`,
			want: certificate.Spec{Name: "a-example-com", DNSNames: []string{"a.example.com"}, KeyType: "RSA", KeySize: 2048},
		},
		{
			name: "whole float key size",
			body: `{"dnsNames":["a.example.com"],"keySize":3072.0}`,
			want: certificate.Spec{Name: "a-example-com", DNSNames: []string{"a.example.com"}, KeyType: "RSA", KeySize: 3072},
		},
		{
			name: "last of keys differing in case wins",
			body: `{"dnsNames":["a.example.com"],"DNSNAMES":["b.example.com"]}`,
			want: certificate.Spec{Name: "b-example-com", DNSNames: []string{"b.example.com"}, KeyType: "RSA", KeySize: 2048},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBackend{}
			rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate", body: tt.body, key: "issuer", contentType: "application/json"})
			wantEmpty(t, rec, http.StatusAccepted)
			if got, want := rec.Header().Get("Location"), "http://certkeeper.test/api/state/"+opID; got != want {
				t.Errorf("Location = %q; want %q", got, want)
			}
			if diff := cmp.Diff([]certificate.Spec{tt.want}, b.issued); diff != "" {
				t.Errorf("issued spec mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssueValidation(t *testing.T) {
	t.Parallel()
	manyNames := make([]string, 101)
	for i := range manyNames {
		manyNames[i] = `"n` + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + `.example.com"`
	}
	manyTags := make([]string, 51)
	for i := range manyTags {
		manyTags[i] = `"t` + strings.Repeat("x", i) + `":"v"`
	}
	tests := []struct {
		name string
		body string
		want map[string][]string
	}{
		{"empty object", `{}`, map[string][]string{"DnsNames": {"The DnsNames is required."}}},
		{"null names", `{"dnsNames":null}`, map[string][]string{"DnsNames": {"The DnsNames is required."}}},
		{"empty names", `{"dnsNames":[]}`, map[string][]string{"DnsNames": {"The DnsNames is required."}}},
		{"names not array", `{"dnsNames":"www.example.com"}`, map[string][]string{"DnsNames": {"The DnsNames must be an array of strings."}}},
		{"name not string", `{"dnsNames":["a.example.com",1,null]}`, map[string][]string{"DnsNames": {"The DnsNames must be an array of strings."}}},
		{"bad names", `{"dnsNames":["a..example.com","localhost","a_b.example.com","www.*.example.com","-a.example.com"]}`, map[string][]string{"DnsNames": {
			"The DnsNames entry 'a..example.com' is not a valid DNS name: it has an empty label.",
			"The DnsNames entry 'localhost' is not a valid DNS name: it needs at least two labels.",
			`The DnsNames entry 'a_b.example.com' is not a valid DNS name: label "a_b" has a character other than a letter, digit or hyphen.`,
			`The DnsNames entry 'www.*.example.com' is not a valid DNS name: "*" is allowed only as the whole leftmost label.`,
			`The DnsNames entry '-a.example.com' is not a valid DNS name: label "-a" starts or ends with a hyphen.`,
		}}},
		{"long name", `{"dnsNames":["` + strings.Repeat("a", 64) + `.com"]}`, map[string][]string{"DnsNames": {
			"The DnsNames entry '" + strings.Repeat("a", 64) + ".com' is not a valid DNS name: label \"" + strings.Repeat("a", 64) + "\" is longer than 63 characters.",
		}}},
		{"duplicates after normalisation", `{"dnsNames":["www.example.com","WWW.Example.com.","www.example.com"]}`, map[string][]string{"DnsNames": {
			"The DnsNames has 'www.example.com' more than once.",
			"The DnsNames has 'www.example.com' more than once.",
		}}},
		{"too many names", `{"dnsNames":[` + strings.Join(manyNames, ",") + `]}`, map[string][]string{"DnsNames": {"The DnsNames must have at most 100 names; it has 101."}}},
		{"bad certificate name", `{"dnsNames":["a.example.com"],"certificateName":"a.b"}`, map[string][]string{"CertificateName": {
			"The field CertificateName must match the regular expression '^[0-9a-zA-Z-]+$'.",
		}}},
		{"long certificate name", `{"dnsNames":["a.example.com"],"certificateName":"` + strings.Repeat("a", 128) + `"}`, map[string][]string{"CertificateName": {
			"The CertificateName must be at most 127 characters long.",
		}}},
		{"certificate name not string", `{"dnsNames":["a.example.com"],"certificateName":5}`, map[string][]string{"CertificateName": {"The CertificateName must be a string."}}},
		{"provider not string", `{"dnsNames":["a.example.com"],"dnsProviderName":{}}`, map[string][]string{"DnsProviderName": {"The DnsProviderName must be a string."}}},
		{"provider too long", `{"dnsNames":["a.example.com"],"dnsProviderName":"` + strings.Repeat("p", 129) + `"}`, map[string][]string{"DnsProviderName": {
			"The DnsProviderName must be at most 128 characters long, without control characters.",
		}}},
		{"bad key type", `{"dnsNames":["a.example.com"],"keyType":"DSA","keySize":1}`, map[string][]string{"KeyType": {"The KeyType must be RSA or EC."}}},
		{"key type not string", `{"dnsNames":["a.example.com"],"keyType":1}`, map[string][]string{"KeyType": {"The KeyType must be a string."}}},
		{"bad RSA size", `{"dnsNames":["a.example.com"],"keySize":1024}`, map[string][]string{"KeySize": {"The KeySize must be 2048, 3072, or 4096 when KeyType is RSA."}}},
		{"bad RSA size string", `{"dnsNames":["a.example.com"],"keyType":"RSA","keySize":"1024"}`, map[string][]string{"KeySize": {"The KeySize must be 2048, 3072, or 4096 when KeyType is RSA."}}},
		{"key size not number", `{"dnsNames":["a.example.com"],"keySize":"big"}`, map[string][]string{"KeySize": {"The KeySize must be a whole number."}}},
		{"key size fraction", `{"dnsNames":["a.example.com"],"keySize":2048.5}`, map[string][]string{"KeySize": {"The KeySize must be a whole number."}}},
		{"key size bool", `{"dnsNames":["a.example.com"],"keyType":"EC","keySize":true}`, map[string][]string{"KeySize": {"The KeySize must be a whole number."}}},
		{"bad curve", `{"dnsNames":["a.example.com"],"keyType":"EC","keyCurveName":"P-256K"}`, map[string][]string{"KeyCurveName": {"The KeyCurveName must be P-256, P-384, or P-521 when KeyType is EC."}}},
		{"curve not string", `{"dnsNames":["a.example.com"],"keyType":"EC","keyCurveName":256}`, map[string][]string{"KeyCurveName": {"The KeyCurveName must be a string."}}},
		{"reuse key not bool", `{"dnsNames":["a.example.com"],"reuseKey":"yes"}`, map[string][]string{"ReuseKey": {"The ReuseKey must be true or false."}}},
		{"reuse key number", `{"dnsNames":["a.example.com"],"reuseKey":1}`, map[string][]string{"ReuseKey": {"The ReuseKey must be true or false."}}},
		{"alias not string", `{"dnsNames":["a.example.com"],"dnsAlias":["x"]}`, map[string][]string{"DnsAlias": {"The DnsAlias must be a string."}}},
		{"bad alias", `{"dnsNames":["a.example.com"],"dnsAlias":"alias"}`, map[string][]string{"DnsAlias": {"The DnsAlias 'alias' is not a valid DNS name: it needs at least two labels."}}},
		{"wildcard alias", `{"dnsNames":["a.example.com"],"dnsAlias":"*.example.net"}`, map[string][]string{"DnsAlias": {"The DnsAlias must not be a wildcard name."}}},
		{"bad profile", `{"dnsNames":["a.example.com"],"profile":"short lived"}`, map[string][]string{"Profile": {"The Profile must be 1 to 64 letters, digits, '.', '_' or '-'."}}},
		{"profile not string", `{"dnsNames":["a.example.com"],"profile":true}`, map[string][]string{"Profile": {"The Profile must be a string."}}},
		{"tags not object", `{"dnsNames":["a.example.com"],"tags":["a"]}`, map[string][]string{"Tags": {"The Tags must be an object whose values are strings."}}},
		{"tag value not string", `{"dnsNames":["a.example.com"],"tags":{"a":1}}`, map[string][]string{"Tags": {"The Tags must be an object whose values are strings."}}},
		{"bad tags", `{"dnsNames":["a.example.com"],"tags":{"":"x","b":"` + strings.Repeat("v", 257) + `"}}`, map[string][]string{"Tags": {
			"The Tags name '' must be 1 to 128 characters long.",
			"The Tags value of 'b' must be at most 256 characters long.",
		}}},
		{"too many tags", `{"dnsNames":["a.example.com"],"tags":{` + strings.Join(manyTags, ",") + `}}`, map[string][]string{"Tags": {"The Tags must have at most 50 entries; it has 51."}}},
		{"every field at once", `{"certificateName":"a b","dnsProviderName":1,"keyType":"RSA","keySize":512,"dnsAlias":"*.x.y","profile":"!","tags":3,"reuseKey":"maybe"}`, map[string][]string{
			"DnsNames":        {"The DnsNames is required."},
			"CertificateName": {"The field CertificateName must match the regular expression '^[0-9a-zA-Z-]+$'."},
			"DnsProviderName": {"The DnsProviderName must be a string."},
			"KeySize":         {"The KeySize must be 2048, 3072, or 4096 when KeyType is RSA."},
			"ReuseKey":        {"The ReuseKey must be true or false."},
			"DnsAlias":        {"The DnsAlias must not be a wildcard name."},
			"Profile":         {"The Profile must be 1 to 64 letters, digits, '.', '_' or '-'."},
			"Tags":            {"The Tags must be an object whose values are strings."},
		}},
		{"malformed JSON", `{"dnsNames":["a.example.com"]`, map[string][]string{"$": {"The request body is not valid JSON: EOF."}}},
		{"syntax error", `{"dnsNames":[a]}`, map[string][]string{"$": {"The request body is not valid JSON: invalid character 'a' looking for beginning of value."}}},
		{"not an object", `["a.example.com"]`, map[string][]string{"$": {"The request body must be a JSON object."}}},
		{"null body", `null`, map[string][]string{"$": {"The request body must be a JSON object."}}},
		{"trailing data", `{"dnsNames":["a.example.com"]} {}`, map[string][]string{"$": {"The request body must be one JSON object with nothing after it."}}},
		{"empty body", ``, map[string][]string{"$": {"A non-empty request body is required."}}},
		{"whitespace body", " \n ", map[string][]string{"$": {"A non-empty request body is required."}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBackend{}
			rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate", body: tt.body, key: "issuer"})
			wantProblem(t, rec, http.StatusBadRequest, validationProblem(tt.want))
			if len(b.issued) != 0 {
				t.Errorf("backend asked to issue %v for an invalid request", b.issued)
			}
		})
	}
}

func TestIssueBackendErrors(t *testing.T) {
	t.Parallel()
	body := `{"dnsNames":["a.example.com"]}`
	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		b := &fakeBackend{issueErr: &api.InvalidError{Field: "DnsNames", Message: "No DNS zone matches a.example.com."}}
		rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate", body: body, key: "issuer"})
		wantProblem(t, rec, http.StatusBadRequest, validationProblem(map[string][]string{"DnsNames": {"No DNS zone matches a.example.com."}}))
	})
	t.Run("wrapped invalid", func(t *testing.T) {
		t.Parallel()
		b := &fakeBackend{issueErr: fmtWrap(&api.InvalidError{Field: "Profile", Message: "The CA does not offer profile x."})}
		rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate", body: body, key: "issuer"})
		wantProblem(t, rec, http.StatusBadRequest, validationProblem(map[string][]string{"Profile": {"The CA does not offer profile x."}}))
	})
	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		b := &fakeBackend{issueErr: errors.New("enqueueing job: database is locked")}
		rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate", body: body, key: "issuer"})
		wantProblem(t, rec, http.StatusInternalServerError, map[string]any{
			"type":   "https://tools.ietf.org/html/rfc9110#section-15.6.1",
			"title":  "An error occurred while processing your request.",
			"detail": "enqueueing job: database is locked",
		})
	})
	t.Run("panic", func(t *testing.T) {
		t.Parallel()
		b := &fakeBackend{panicking: true}
		rec := serve(t, newAPI(b, ""), request{method: "POST", path: "/api/certificate", body: body, key: "issuer"})
		wantProblem(t, rec, http.StatusInternalServerError, map[string]any{
			"type":  "https://tools.ietf.org/html/rfc9110#section-15.6.1",
			"title": "An error occurred while processing your request.",
		})
	})
}

func fmtWrap(err error) error { return errors.Join(errors.New("checking request"), err) }

func TestIssueBody(t *testing.T) {
	t.Parallel()
	body := `{"dnsNames":["a.example.com"]}`
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		want        map[string]any
	}{
		{name: "no content type", body: body, status: http.StatusAccepted},
		{name: "json with charset", contentType: "application/json; charset=utf-8", body: body, status: http.StatusAccepted},
		{name: "problem json", contentType: "application/merge-patch+json", body: body, status: http.StatusAccepted},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: body, status: http.StatusUnsupportedMediaType, want: map[string]any{
			"type": "https://tools.ietf.org/html/rfc9110#section-15.5.16", "title": "Unsupported Media Type",
			"detail": "The request body must be JSON, sent with Content-Type: application/json.",
		}},
		{name: "oversize", body: `{"dnsNames":["a.example.com"],"tags":{"x":"` + strings.Repeat("v", 1<<20) + `"}}`, status: http.StatusRequestEntityTooLarge, want: map[string]any{
			"type": "https://tools.ietf.org/html/rfc9110#section-15.5.14", "title": "Content Too Large",
			"detail": "The request body must be at most 1048576 bytes.",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, newAPI(&fakeBackend{}, ""), request{method: "POST", path: "/api/certificate", body: tt.body, key: "issuer", contentType: tt.contentType})
			if tt.want == nil {
				wantEmpty(t, rec, tt.status)
				return
			}
			wantProblem(t, rec, tt.status, tt.want)
		})
	}
}

func TestMaxBodyBytesOption(t *testing.T) {
	t.Parallel()
	h := api.New(api.Options{Backend: &fakeBackend{}, Auth: fakeAuth{}, MaxBodyBytes: 10})
	rec := serve(t, h, request{method: "POST", path: "/api/certificate", body: `{"dnsNames":["a.example.com"]}`, key: "issuer"})
	wantProblem(t, rec, http.StatusRequestEntityTooLarge, map[string]any{
		"type": "https://tools.ietf.org/html/rfc9110#section-15.5.14", "title": "Content Too Large",
		"detail": "The request body must be at most 10 bytes.",
	})
}
