package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/auth"
)

// FuzzBearerToken feeds arbitrary bearer values to an Authenticator that
// trusts no issuer it can reach. Every one must be refused as
// unauthenticated (a value naming the configured issuer may instead fail
// discovery), without a panic and without the value in the error.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0.",
		"a.b.c", "....", "e30.e30.e30", "eyJ9.eyJpc3MiOjF9.x", "ck_", "x",
	} {
		f.Add(s)
	}
	issuer := auth.NewTokenIssuer(auth.IssuerConfig{Issuer: "http://127.0.0.1:1/never", Audiences: []string{"x"}})
	a := auth.NewAuthenticator(auth.Options{Issuers: []*auth.TokenIssuer{issuer}})
	f.Fuzz(func(t *testing.T, token string) {
		token = strings.TrimSpace(token)
		if token == "" || strings.ContainsAny(token, "\r\n") {
			return
		}
		_, err := a.Authenticate(bearer(token))
		if err == nil {
			t.Fatalf("token %q accepted", token)
		}
		if !errors.Is(err, auth.ErrUnauthenticated) && !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("token %q: error %v is neither unauthenticated nor the unreachable issuer", token, err)
		}
		if len(token) > 16 && strings.Contains(err.Error(), token) {
			t.Errorf("the error repeats the token: %v", err)
		}
	})
}
