package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/auth"
)

// FuzzCreateKey feeds arbitrary bodies to POST /api/keys. The handler must
// answer 201 or a 400 validation problem (never 5xx, which a recovered panic
// would be), and every key it creates must have a valid name, valid roles
// and normalised zones.
func FuzzCreateKey(f *testing.F) {
	for _, s := range []string{
		`{"name":"ci"}`,
		`{"Name":"team-a","roles":["Acmebot.IssueCertificate"],"zones":["Bücher.example","*.dev.example.com."],"expiresAt":"2099-01-01T00:00:00Z"}`,
		`{"name":"x","roles":"Certkeeper.Admin","zones":[1]}`,
		`{"name":"x","expiresAt":"yesterday"}`, `{"name":""}`, `[]`, `{`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		acc := &fakeAccess{}
		h := api.New(api.Options{Backend: scopedBackend(), Auth: scopedAuth{}, Access: acc})
		r := httptest.NewRequest("POST", "http://certkeeper.test/api/keys", strings.NewReader(body))
		r.Header.Set("X-Functions-Key", "root")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		switch rec.Code {
		case http.StatusCreated:
			keys, _ := acc.Keys(t.Context())
			if len(keys) != 1 {
				t.Fatalf("201 but %d keys stored", len(keys))
			}
			k := keys[0]
			if !api.KeyNamePattern.MatchString(k.Name) {
				t.Errorf("created a key named %q", k.Name)
			}
			for _, role := range k.Roles {
				if !auth.ValidRole(string(role)) {
					t.Errorf("created a key with role %q", role)
				}
			}
			for _, z := range k.Zones {
				if n, err := auth.NormalizeZone(z); err != nil || n != z {
					t.Errorf("created a key with zone %q (normalised %q, %v)", z, n, err)
				}
			}
		case http.StatusBadRequest:
			var p struct{ Errors map[string][]string }
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || len(p.Errors) == 0 {
				t.Errorf("400 without validation errors: %s", rec.Body)
			}
		default:
			t.Errorf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
