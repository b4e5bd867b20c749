package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	ciKey     = "ci-key-0123456789abcdef"
	adminKey  = "admin-key-0123456789abcdef"
	plainKey  = "plain-key-0123456789abcdef"
	unusedKey = "nobody-has-this-key-0123456789"
)

func testKeys(requireRoles bool) *Keys {
	return NewKeys([]Key{
		{Name: "ci", Hash: HashKey(ciKey), Roles: []Role{RoleIssue, RoleRevoke}},
		{Name: "admin", Hash: HashKey(adminKey), Roles: []Role{RoleAdmin}},
		{Name: "plain", Hash: HashKey(plainKey)},
	}, requireRoles)
}

func request(header map[string]string, query url.Values) *http.Request {
	target := "/api/certificates"
	if query != nil {
		target += "?" + query.Encode()
	}
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  map[string]string
		query   url.Values
		want    Principal
		wantErr error
	}{
		{
			name:   "functions key header",
			header: map[string]string{"X-Functions-Key": ciKey},
			want:   Principal{Name: "ci", Roles: []Role{RoleIssue, RoleRevoke}},
		},
		{
			name:  "code query parameter",
			query: url.Values{"code": {adminKey}},
			want:  Principal{Name: "admin", Roles: []Role{RoleAdmin}},
		},
		{
			name:   "api key header",
			header: map[string]string{"X-Api-Key": plainKey},
			want:   Principal{Name: "plain"},
		},
		{
			name:   "functions key wins over code and api key",
			header: map[string]string{"X-Functions-Key": ciKey, "X-Api-Key": adminKey},
			query:  url.Values{"code": {plainKey}},
			want:   Principal{Name: "ci", Roles: []Role{RoleIssue, RoleRevoke}},
		},
		{
			name:   "code wins over api key",
			header: map[string]string{"X-Api-Key": adminKey},
			query:  url.Values{"code": {plainKey}},
			want:   Principal{Name: "plain"},
		},
		{
			name:    "first present wins even when it is wrong",
			header:  map[string]string{"X-Functions-Key": unusedKey, "X-Api-Key": adminKey},
			wantErr: ErrUnauthenticated,
		},
		{
			name:   "empty functions key is absent",
			header: map[string]string{"X-Functions-Key": "", "X-Api-Key": ciKey},
			want:   Principal{Name: "ci", Roles: []Role{RoleIssue, RoleRevoke}},
		},
		{
			name:   "empty code is absent",
			header: map[string]string{"X-Api-Key": plainKey},
			query:  url.Values{"code": {""}},
			want:   Principal{Name: "plain"},
		},
		{
			name:    "wrong key",
			header:  map[string]string{"X-Api-Key": unusedKey},
			wantErr: ErrUnauthenticated,
		},
		{
			name:    "key with different case",
			header:  map[string]string{"X-Api-Key": strings.ToUpper(ciKey)},
			wantErr: ErrUnauthenticated,
		},
		{
			name:    "prefix of a key",
			header:  map[string]string{"X-Api-Key": ciKey[:len(ciKey)-1]},
			wantErr: ErrUnauthenticated,
		},
		{
			name:    "no credential",
			wantErr: ErrUnauthenticated,
		},
		{
			name:    "all credentials empty",
			header:  map[string]string{"X-Functions-Key": "", "X-Api-Key": ""},
			query:   url.Values{"code": {""}},
			wantErr: ErrUnauthenticated,
		},
		{
			name:    "bearer token is not accepted yet",
			header:  map[string]string{"Authorization": "Bearer " + ciKey},
			wantErr: ErrUnauthenticated,
		},
	}
	for _, requireRoles := range []bool{false, true} {
		keys := testKeys(requireRoles)
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/requireRoles=%t", tt.name, requireRoles), func(t *testing.T) {
				t.Parallel()
				got, err := keys.Authenticate(request(tt.header, tt.query))
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Authenticate() error = %v, want %v", err, tt.wantErr)
				}
				want := tt.want
				if tt.wantErr == nil {
					want.RequireRoles = requireRoles
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Authenticate() principal mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestAuthenticateNoKeys(t *testing.T) {
	t.Parallel()
	r := request(map[string]string{"X-Api-Key": ciKey}, nil)
	for name, keys := range map[string]*Keys{"nil": nil, "zero": {}, "empty": NewKeys(nil, true)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := keys.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("Authenticate() error = %v, want %v", err, ErrUnauthenticated)
			}
		})
	}
}

func TestAuthenticateFirstOfDuplicateHashes(t *testing.T) {
	t.Parallel()
	keys := NewKeys([]Key{
		{Name: "other", Hash: HashKey(adminKey)},
		{Name: "first", Hash: HashKey(ciKey), Roles: []Role{RoleIssue}},
		{Name: "second", Hash: HashKey(ciKey), Roles: []Role{RoleAdmin}},
	}, true)
	got, err := keys.Authenticate(request(map[string]string{"X-Api-Key": ciKey}, nil))
	if err != nil {
		t.Fatalf("Authenticate() error = %v", err)
	}
	want := Principal{Name: "first", Roles: []Role{RoleIssue}, RequireRoles: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Authenticate() principal mismatch (-want +got):\n%s", diff)
	}
}

func TestNewKeysCopies(t *testing.T) {
	t.Parallel()
	in := []Key{{Name: "ci", Hash: HashKey(ciKey), Roles: []Role{RoleIssue}}}
	keys := NewKeys(in, true)
	in[0].Roles[0] = RoleAdmin
	in[0].Hash = HashKey(unusedKey)
	got, err := keys.Authenticate(request(map[string]string{"X-Api-Key": ciKey}, nil))
	if err != nil {
		t.Fatalf("Authenticate() error = %v", err)
	}
	got.Roles[0] = RoleAdmin // must not change what the next request gets
	got, err = keys.Authenticate(request(map[string]string{"X-Api-Key": ciKey}, nil))
	if err != nil {
		t.Fatalf("Authenticate() error = %v", err)
	}
	if diff := cmp.Diff([]Role{RoleIssue}, got.Roles); diff != "" {
		t.Errorf("roles mismatch (-want +got):\n%s", diff)
	}
}

func TestPrincipalHas(t *testing.T) {
	t.Parallel()
	type want map[Role]bool
	tests := []struct {
		name         string
		roles        []Role
		requireRoles bool
		want         want
	}{
		{"no roles, roles not required", nil, false,
			want{RoleIssue: true, RoleRevoke: true, RoleReader: true, RoleReadCertificate: false, RoleAdmin: false}},
		{"no roles, roles required", nil, true,
			want{RoleIssue: false, RoleRevoke: false, RoleReader: true, RoleReadCertificate: false, RoleAdmin: false}},
		{"issue, roles required", []Role{RoleIssue}, true,
			want{RoleIssue: true, RoleRevoke: false, RoleReader: true, RoleReadCertificate: false, RoleAdmin: false}},
		{"revoke, roles required", []Role{RoleRevoke}, true,
			want{RoleIssue: false, RoleRevoke: true, RoleReader: true, RoleReadCertificate: false, RoleAdmin: false}},
		{"read certificate, roles required", []Role{RoleReadCertificate}, true,
			want{RoleIssue: false, RoleRevoke: false, RoleReader: true, RoleReadCertificate: true, RoleAdmin: false}},
		{"read certificate, roles not required", []Role{RoleReadCertificate}, false,
			want{RoleIssue: true, RoleRevoke: true, RoleReader: true, RoleReadCertificate: true, RoleAdmin: false}},
		{"reader, roles required", []Role{RoleReader}, true,
			want{RoleIssue: false, RoleRevoke: false, RoleReader: true, RoleReadCertificate: false, RoleAdmin: false}},
		{"admin, roles required", []Role{RoleAdmin}, true,
			want{RoleIssue: true, RoleRevoke: true, RoleReader: true, RoleReadCertificate: true, RoleAdmin: true}},
		{"admin, roles not required", []Role{RoleAdmin}, false,
			want{RoleIssue: true, RoleRevoke: true, RoleReader: true, RoleReadCertificate: true, RoleAdmin: true}},
		{"issue and revoke, roles required", []Role{RoleIssue, RoleRevoke}, true,
			want{RoleIssue: true, RoleRevoke: true, RoleReader: true, RoleReadCertificate: false, RoleAdmin: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if len(tt.want) != len(Roles) {
				t.Fatalf("table row covers %d roles, want all %d", len(tt.want), len(Roles))
			}
			p := Principal{Name: "p", Roles: tt.roles, RequireRoles: tt.requireRoles}
			got := want{}
			for _, role := range Roles {
				got[role] = p.Has(role)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Has() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidRole(t *testing.T) {
	t.Parallel()
	for _, role := range Roles {
		if !ValidRole(string(role)) {
			t.Errorf("ValidRole(%q) = false, want true", role)
		}
	}
	for _, name := range []string{"", "acmebot.issuecertificate", "Admin", "Certkeeper.Admin "} {
		if ValidRole(name) {
			t.Errorf("ValidRole(%q) = true, want false", name)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatalf("GenerateKey() error = %v", err)
		}
		key := k.Reveal()
		rest, ok := strings.CutPrefix(key, KeyPrefix)
		if !ok {
			t.Fatalf("key %q lacks prefix %q", key, KeyPrefix)
		}
		raw, err := base64.RawURLEncoding.DecodeString(rest)
		if err != nil {
			t.Fatalf("key body is not unpadded base64url: %v", err)
		}
		if len(raw) != 32 {
			t.Fatalf("key holds %d random bytes, want 32", len(raw))
		}
		if seen[key] {
			t.Fatalf("GenerateKey() repeated a key")
		}
		seen[key] = true
		if got := fmt.Sprint(k); strings.Contains(got, rest) {
			t.Fatalf("fmt.Sprint of generated key shows it: %q", got)
		}
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	t.Parallel()
	const apiKey = "super-secret-api-key-0123456789"
	hash := HashKey(apiKey)
	key := Key{Name: "ci", Hash: hash, Roles: []Role{RoleIssue}}
	keys := NewKeys([]Key{key}, true)

	var logged bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logged, nil), slog.NewJSONHandler(&logged, nil)} {
		logger := slog.New(h)
		logger.Info("keys", "key", key, "keys", keys, "key_ptr", &key)
	}
	outputs := map[string]string{
		"slog":        logged.String(),
		"Sprint":      fmt.Sprint(key, keys, &key, []Key{key}),
		"Sprintf %v":  fmt.Sprintf("%v %v", key, keys),
		"Sprintf %+v": fmt.Sprintf("%+v %+v", key, keys),
		"Sprintf %#v": fmt.Sprintf("%#v %#v", key, keys),
		"Sprintf %s":  fmt.Sprintf("%s %s", key, keys),
	}
	forbidden := map[string]string{
		"key":            apiKey,
		"hash hex":       fmt.Sprintf("%x", hash),
		"hash bytes":     fmt.Sprint(hash[:4]),
		"hash byte list": strings.Trim(fmt.Sprint(hash[:4]), "[]"),
	}
	for name, out := range outputs {
		if !strings.Contains(out, "ci") {
			t.Errorf("%s output %q does not name the key", name, out)
		}
		for what, s := range forbidden {
			if strings.Contains(out, s) {
				t.Errorf("%s output contains the %s: %q", name, what, out)
			}
		}
	}
}

func TestHashKey(t *testing.T) {
	t.Parallel()
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	h := HashKey("abc")
	if got := fmt.Sprintf("%x", h); got != want {
		t.Errorf("HashKey(abc) = %s, want %s", got, want)
	}
}
