package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The messages Acmebot clients show to people (the API reference).
const (
	msgDNSNamesRequired = "The DnsNames is required."
	msgCertificateName  = "The field CertificateName must match the regular expression '^[0-9a-zA-Z-]+$'."
	msgRSAKeySize       = "The KeySize must be 2048, 3072, or 4096 when KeyType is RSA."
)

func testValidation(t *testing.T, s *stack) {
	manyNames := make([]string, 101)
	for i := range manyNames {
		manyNames[i] = fmt.Sprintf("n%d.%s", i, zone)
	}
	long := strings.Repeat("a", 64)
	tests := []struct {
		name string
		body string
		// errors is the problem's errors: PascalCase keys, every message.
		errors map[string][]string
	}{
		{"missing dnsNames", `{}`, map[string][]string{"DnsNames": {msgDNSNamesRequired}}},
		{"empty dnsNames", `{"dnsNames":[]}`, map[string][]string{"DnsNames": {msgDNSNamesRequired}}},
		{"name with underscore", `{"dnsNames":["bad_name.example.test"]}`, map[string][]string{"DnsNames": {
			`The DnsNames entry 'bad_name.example.test' is not a valid DNS name: label "bad_name" has a character other than a letter, digit or hyphen.`}}},
		{"single label", `{"dnsNames":["localhost"]}`, map[string][]string{"DnsNames": {
			`The DnsNames entry 'localhost' is not a valid DNS name: it needs at least two labels.`}}},
		{"wildcard not leftmost", `{"dnsNames":["www.*.example.test"]}`, map[string][]string{"DnsNames": {
			`The DnsNames entry 'www.*.example.test' is not a valid DNS name: "*" is allowed only as the whole leftmost label.`}}},
		{"label too long", `{"dnsNames":["` + long + `.example.test"]}`, map[string][]string{"DnsNames": {
			`The DnsNames entry '` + long + `.example.test' is not a valid DNS name: label "` + long + `" is longer than 63 characters.`}}},
		{"more than 100 names", mustJSON(t, map[string]any{"dnsNames": manyNames}), map[string][]string{"DnsNames": {
			"The DnsNames must have at most 100 names; it has 101."}}},
		{"duplicate names", `{"dnsNames":["dup.example.test","DUP.example.test."]}`, map[string][]string{"DnsNames": {
			"The DnsNames has 'dup.example.test' more than once."}}},
		{"bad certificateName", `{"dnsNames":["v.example.test"],"certificateName":"bad_name!"}`,
			map[string][]string{"CertificateName": {msgCertificateName}}},
		{"RSA keySize 1024", `{"dnsNames":["v.example.test"],"keyType":"RSA","keySize":1024}`,
			map[string][]string{"KeySize": {msgRSAKeySize}}},
		{"RSA keySize as a string", `{"dnsNames":["v.example.test"],"keySize":"1024"}`,
			map[string][]string{"KeySize": {msgRSAKeySize}}},
		{"EC unknown curve", `{"dnsNames":["v.example.test"],"keyType":"EC","keyCurveName":"P-192"}`,
			map[string][]string{"KeyCurveName": {"The KeyCurveName must be P-256, P-384, or P-521 when KeyType is EC."}}},
		{"unknown keyType", `{"dnsNames":["v.example.test"],"keyType":"DSA"}`,
			map[string][]string{"KeyType": {"The KeyType must be RSA or EC."}}},
		{"dnsNames not an array", `{"dnsNames":"v.example.test"}`,
			map[string][]string{"DnsNames": {"The DnsNames must be an array of strings."}}},
		{"keySize not a number", `{"dnsNames":["v.example.test"],"keySize":true}`,
			map[string][]string{"KeySize": {"The KeySize must be a whole number."}}},
		{"every problem at once", `{"certificateName":"bad name","keySize":1024}`, map[string][]string{
			"DnsNames": {msgDNSNamesRequired}, "CertificateName": {msgCertificateName}, "KeySize": {msgRSAKeySize}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			r := s.srv.do(ctx, t, http.MethodPost, "/api/certificate", s.issuerKey, []byte(tt.body))
			if r.Status != http.StatusBadRequest {
				t.Fatalf("got %s, want 400", r)
			}
			p := decodeProblem(t, r)
			if p.Title != "One or more validation errors occurred." {
				t.Errorf("title = %q", p.Title)
			}
			if p.Type != "https://tools.ietf.org/html/rfc9110#section-15.5.1" {
				t.Errorf("type = %q", p.Type)
			}
			if diff := cmp.Diff(tt.errors, p.Errors); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{`{"dnsNames":`, `not json`, `["x.example.test"]`, `{"dnsNames":["x.example.test"]} {}`} {
			r := s.srv.do(testCtx(t), t, http.MethodPost, "/api/certificate", s.issuerKey, []byte(body))
			if r.Status != http.StatusBadRequest {
				t.Errorf("body %s: got %s, want 400", body, r)
				continue
			}
			decodeProblem(t, r)
		}
	})

	t.Run("body over 1 MiB", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		b.WriteString(`{"dnsNames":["big.example.test"],"tags":{"pad":"`)
		b.WriteString(strings.Repeat("x", 1<<20))
		b.WriteString(`"}}`)
		r := s.srv.do(testCtx(t), t, http.MethodPost, "/api/certificate", s.issuerKey, b.Bytes())
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d %.200s, want 413", r.Status, r.Body)
		}
	})
}

func testAuthentication(t *testing.T, s *stack) {
	valid := []byte(`{"dnsNames":["auth.example.test"]}`)
	invalid := []byte(`{}`)
	const someOp = "/api/state/0123456789abcdef0123456789abcdef"
	tests := []struct {
		name   string
		method string
		path   string
		key    string
		body   []byte
		want   int
	}{
		{"issue without key", http.MethodPost, "/api/certificate", "", valid, http.StatusUnauthorized},
		{"issue with wrong key", http.MethodPost, "/api/certificate", "wrong-key", valid, http.StatusUnauthorized},
		{"invalid issue without key", http.MethodPost, "/api/certificate", "", invalid, http.StatusUnauthorized},
		{"list without key", http.MethodGet, "/api/certificates", "", nil, http.StatusUnauthorized},
		{"list with wrong key", http.MethodGet, "/api/certificates", s.issuerKey + "x", nil, http.StatusUnauthorized},
		{"state without key", http.MethodGet, someOp, "", nil, http.StatusUnauthorized},
		{"renew without key", http.MethodPost, "/api/certificate/example-test/renew", "", nil, http.StatusUnauthorized},
		{"revoke without key", http.MethodPost, "/api/certificate/example-test/revoke", "", nil, http.StatusUnauthorized},
		{"dns zones without key", http.MethodGet, "/api/dns-zones", "", nil, http.StatusUnauthorized},
		{"issue without role", http.MethodPost, "/api/certificate", s.readerKey, valid, http.StatusForbidden},
		{"invalid issue without role", http.MethodPost, "/api/certificate", s.readerKey, invalid, http.StatusForbidden},
		{"renew without role", http.MethodPost, "/api/certificate/example-test/renew", s.readerKey, nil, http.StatusForbidden},
		{"revoke without role", http.MethodPost, "/api/certificate/example-test/revoke", s.readerKey, nil, http.StatusForbidden},
		{"list with reader key", http.MethodGet, "/api/certificates", s.readerKey, nil, http.StatusOK},
		{"dns zones with reader key", http.MethodGet, "/api/dns-zones", s.readerKey, nil, http.StatusOK},
		{"ping without key", http.MethodGet, "/api/ping", "", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.srv.do(testCtx(t), t, tt.method, tt.path, tt.key, tt.body)
			if r.Status != tt.want {
				t.Fatalf("got %s, want %d", r, tt.want)
			}
			if (tt.want == http.StatusUnauthorized || tt.want == http.StatusForbidden) && len(r.Body) != 0 {
				t.Errorf("%d carries a body: %s", tt.want, r.Body)
			}
			if cc := r.Header.Get("Cache-Control"); tt.path != "/api/ping" && cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
		})
	}

	t.Run("other key carriers", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		r := s.srv.do(ctx, t, http.MethodGet, "/api/certificates?code="+s.readerKey, "", nil)
		if r.Status != http.StatusOK {
			t.Errorf("?code=: got %s, want 200", r)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.baseURL+"/api/certificates", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Api-Key", s.readerKey)
		resp, err := s.srv.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("X-Api-Key: got %d, want 200", resp.StatusCode)
		}
	})

	t.Run("dns zones", func(t *testing.T) {
		t.Parallel()
		r := s.srv.do(testCtx(t), t, http.MethodGet, "/api/dns-zones", s.readerKey, nil)
		type dnsZone struct {
			Name string `json:"name"`
		}
		type group struct {
			DNSProviderName string    `json:"dnsProviderName"`
			DNSZones        []dnsZone `json:"dnsZones"`
		}
		var got []group
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatalf("decoding %s: %v", r, err)
		}
		want := []group{{DNSProviderName: "BIND", DNSZones: []dnsZone{{Name: zone}, {Name: refusedZone}}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET /api/dns-zones (-want +got):\n%s", diff)
		}
	})
}

func testUnknownOperation(t *testing.T, s *stack) {
	for _, id := range []string{randomHex(16), "not-an-operation-id"} {
		r := s.srv.do(testCtx(t), t, http.MethodGet, "/api/state/"+id, s.issuerKey, nil)
		if r.Status != http.StatusBadRequest {
			t.Errorf("GET /api/state/%s: got %s, want 400", id, r)
			continue
		}
		decodeProblem(t, r)
	}
}

func testUnknownCertificate(t *testing.T, s *stack) {
	for _, op := range []string{"renew", "revoke"} {
		path := "/api/certificate/no-such-certificate/" + op
		r := s.srv.do(testCtx(t), t, http.MethodPost, path, s.issuerKey, nil)
		if r.Status != http.StatusNotFound {
			t.Errorf("POST %s: got %s, want 404", path, r)
			continue
		}
		decodeProblem(t, r)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
