package auth_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// clock is a settable clock for the key cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/certificates", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// authenticatorFor returns an Authenticator that trusts idp with cfg's
// settings (Issuer and Audiences filled in).
func authenticatorFor(idp *testenv.OIDC, cfg auth.IssuerConfig) *auth.Authenticator {
	cfg.Issuer = idp.Issuer
	if cfg.Audiences == nil {
		cfg.Audiences = []string{"api://certkeeper", idp.ClientID}
	}
	return auth.NewAuthenticator(auth.Options{Issuers: []*auth.TokenIssuer{auth.NewTokenIssuer(cfg)}, RequireRoles: true})
}

// TestTokenRoles signs users in through the provider's real
// authorization-code flow and checks the roles each token gives.
func TestTokenRoles(t *testing.T) {
	t.Parallel()
	idp := testenv.StartOIDC(t)
	a := authenticatorFor(idp, auth.IssuerConfig{
		GroupsClaim: "groups",
		Mappings: []auth.Mapping{
			{Value: "team-a", Roles: []auth.Role{auth.RoleIssue, auth.RoleRevoke}, Zones: []string{"a.example.com"}},
			{Value: "Acmebot.RevokeCertificate", Roles: []auth.Role{auth.RoleRevoke}, Zones: []string{"*.dev.example.com"}},
			{Claim: "repository", Value: "org/infra", Roles: []auth.Role{auth.RoleIssue}, Zones: []string{"infra.example.com"}},
			{Claim: "realm_access.roles", Value: "cert-admin", Roles: []auth.Role{auth.RoleAdmin}},
		},
	})
	tests := []struct {
		name   string
		claims map[string]any
		want   auth.Principal
	}{
		{"issue", map[string]any{"roles": []string{"Acmebot.IssueCertificate"}},
			auth.Principal{Roles: []auth.Role{auth.RoleIssue}}},
		{"revoke mapped to a zone", map[string]any{"roles": []string{"Acmebot.RevokeCertificate"}},
			auth.Principal{Grants: []auth.Grant{{Roles: []auth.Role{auth.RoleRevoke}, Zones: []string{"*.dev.example.com"}}}}},
		{"reader", map[string]any{"roles": []string{"Certkeeper.Reader"}},
			auth.Principal{Roles: []auth.Role{auth.RoleReader}}},
		{"read certificate", map[string]any{"roles": []string{"Certkeeper.ReadCertificate"}},
			auth.Principal{Roles: []auth.Role{auth.RoleReadCertificate}}},
		{"admin", map[string]any{"roles": []string{"Certkeeper.Admin"}},
			auth.Principal{Roles: []auth.Role{auth.RoleAdmin}}},
		{"two roles, one unknown value", map[string]any{"roles": []string{"Acmebot.IssueCertificate", "Acmebot.RevokeCertificate", "Other.Role"}},
			auth.Principal{Roles: []auth.Role{auth.RoleIssue}, Grants: []auth.Grant{{Roles: []auth.Role{auth.RoleRevoke}, Zones: []string{"*.dev.example.com"}}}}},
		{"group mapped to a zone", map[string]any{"groups": []string{"team-b", "team-a"}},
			auth.Principal{Grants: []auth.Grant{{Roles: []auth.Role{auth.RoleIssue, auth.RoleRevoke}, Zones: []string{"a.example.com"}}}}},
		{"CI token claim", map[string]any{"repository": "org/infra"},
			auth.Principal{Grants: []auth.Grant{{Roles: []auth.Role{auth.RoleIssue}, Zones: []string{"infra.example.com"}}}}},
		{"Keycloak nested roles", map[string]any{"realm_access": map[string]any{"roles": []string{"cert-admin"}}},
			auth.Principal{Roles: []auth.Role{auth.RoleAdmin}}},
		{"no roles", nil, auth.Principal{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			token := idp.Login(t, "user-"+strings.ReplaceAll(tt.name, " ", "-"), tt.claims)
			got, err := a.Authenticate(bearer(token))
			if err != nil {
				t.Fatalf("Authenticate() error = %v", err)
			}
			want := tt.want
			want.Kind, want.ID, want.Name, want.Issuer, want.RequireRoles =
				auth.KindToken, "user-"+strings.ReplaceAll(tt.name, " ", "-"), want.ID, idp.Issuer, true
			want.Name = want.ID
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("principal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestZitadelRoleClaim checks a roles claim that is an object keyed by role.
func TestZitadelRoleClaim(t *testing.T) {
	t.Parallel()
	idp := testenv.StartOIDC(t)
	const claim = "urn:zitadel:iam:org:project:roles"
	a := authenticatorFor(idp, auth.IssuerConfig{RolesClaim: claim})
	token := idp.Login(t, "zitadel-user", map[string]any{claim: map[string]any{
		"Acmebot.IssueCertificate": map[string]any{"123": "org.example.com"}}})
	got, err := a.Authenticate(bearer(token))
	if err != nil {
		t.Fatalf("Authenticate() error = %v", err)
	}
	if diff := cmp.Diff([]auth.Role{auth.RoleIssue}, got.Roles); diff != "" {
		t.Errorf("roles mismatch (-want +got):\n%s", diff)
	}
}

// TestTokenRefused checks every way a token is refused, and that the
// failure names why without repeating the token.
func TestTokenRefused(t *testing.T) {
	t.Parallel()
	idp := testenv.StartOIDC(t)
	other := testenv.StartOIDC(t)
	stranger := testenv.NewSigningKey(t)
	provider := idp.ProviderKey()
	now := time.Now()

	valid := idp.Login(t, "alice", map[string]any{"roles": []string{"Acmebot.IssueCertificate"}})
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + strings.Split(testenv.Sign(t, provider, idp.Claims("alice", map[string]any{"roles": []string{"Certkeeper.Admin"}})), ".")[1] + "." + parts[2]

	// A token the provider issued two hours ago (its clock set back).
	idp.FastForward(-2 * time.Hour)
	expired := idp.Login(t, "alice", map[string]any{"roles": []string{"Acmebot.IssueCertificate"}})
	idp.FastForward(2 * time.Hour)

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"expired", expired, auth.ReasonExpiredToken},
		{"expired beyond the skew", testenv.Sign(t, provider, idp.Claims("alice", map[string]any{
			"exp": now.Add(-2 * time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix()})), auth.ReasonExpiredToken},
		{"no expiry", testenv.Sign(t, provider, idp.Claims("alice", map[string]any{"exp": nil})), auth.ReasonRejectedClaims},
		{"not yet valid", testenv.Sign(t, provider, idp.Claims("alice", map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})), auth.ReasonRejectedClaims},
		{"issued in the future", testenv.Sign(t, provider, idp.Claims("alice", map[string]any{"iat": now.Add(5 * time.Minute).Unix()})), auth.ReasonRejectedClaims},
		{"wrong audience", testenv.Sign(t, provider, idp.Claims("alice", map[string]any{"aud": "someone-else"})), auth.ReasonWrongAudience},
		{"wrong audience from the provider", other.Login(t, "alice", nil), auth.ReasonUnknownIssuer},
		{"wrong issuer", testenv.Sign(t, provider, idp.Claims("alice", map[string]any{"iss": "https://evil.example"})), auth.ReasonUnknownIssuer},
		{"configured issuer, signed by another provider", testenv.Sign(t, other.ProviderKey(),
			idp.Claims("alice", nil)), auth.ReasonBadSignature},
		{"bad signature", tampered, auth.ReasonBadSignature},
		{"unknown key under the provider's key id", testenv.Sign(t, testenv.SigningKey{Key: stranger.Key, Kid: provider.Kid},
			idp.Claims("alice", nil)), auth.ReasonBadSignature},
		{"unknown key id", testenv.Sign(t, stranger, idp.Claims("alice", nil)), auth.ReasonBadSignature},
		{"alg none", testenv.Unsigned(idp.Claims("alice", map[string]any{"roles": []string{"Certkeeper.Admin"}})), auth.ReasonMalformedToken},
		{"alg none without a signature part", strings.TrimSuffix(testenv.Unsigned(idp.Claims("alice", nil)), "."), auth.ReasonMalformedToken},
		{"no subject", testenv.Sign(t, provider, idp.Claims("", nil)), auth.ReasonRejectedClaims},
		{"not a JWT", "opaque-access-token", auth.ReasonMalformedToken},
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	a := authenticatorFor(idp, auth.IssuerConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Authenticate(bearer(tt.token))
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("Authenticate() error = %v; want unauthenticated", err)
			}
			f, ok := errors.AsType[*auth.Failure](err)
			if !ok || f.Reason != tt.reason {
				t.Fatalf("Authenticate() error = %v; want reason %s", err, tt.reason)
			}
			logger.Warn("authentication failed", "failure", f)
			sig := tt.token[strings.LastIndexByte(tt.token, '.')+1:]
			if strings.Contains(err.Error(), tt.token) || (len(sig) > 8 && strings.Contains(err.Error(), sig)) {
				t.Errorf("the error repeats the token: %v", err)
			}
		})
	}
	if strings.Contains(logs.String(), valid) || strings.Contains(logs.String(), parts[2]) {
		t.Errorf("the log repeats a token:\n%s", logs.String())
	}
	if _, err := a.Authenticate(bearer(valid)); err != nil {
		t.Errorf("the valid token was refused: %v", err)
	}
}

// TestTokenClockSkew accepts a token just expired and one just not yet
// valid, within the allowed skew.
func TestTokenClockSkew(t *testing.T) {
	t.Parallel()
	idp := testenv.StartOIDC(t)
	a := authenticatorFor(idp, auth.IssuerConfig{ClockSkew: 2 * time.Minute})
	now := time.Now()
	for name, extra := range map[string]map[string]any{
		"expired a minute ago": {"exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix()},
		"valid in a minute":    {"nbf": now.Add(time.Minute).Unix(), "iat": now.Add(time.Minute).Unix()},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := a.Authenticate(bearer(testenv.Sign(t, idp.ProviderKey(), idp.Claims("alice", extra)))); err != nil {
				t.Errorf("Authenticate() error = %v", err)
			}
		})
	}
}

// TestRequiredClaims refuses tokens that lack a required claim value.
func TestRequiredClaims(t *testing.T) {
	t.Parallel()
	idp := testenv.StartOIDC(t)
	a := authenticatorFor(idp, auth.IssuerConfig{RequiredClaims: map[string][]string{"repository_owner": {"org", "org2"}}})
	for _, tt := range []struct {
		owner any
		ok    bool
	}{{"org", true}, {"org2", true}, {"someone", false}, {nil, false}} {
		token := testenv.Sign(t, idp.ProviderKey(), idp.Claims("repo:org/x", map[string]any{"repository_owner": tt.owner}))
		_, err := a.Authenticate(bearer(token))
		if (err == nil) != tt.ok {
			t.Errorf("repository_owner %v: error = %v; want ok = %t", tt.owner, err, tt.ok)
		}
	}
}

// TestKeyRotation follows a key rotation at the provider: a new key is
// accepted as soon as a token names it, and a key rotated out is refused —
// at once when a fetch has already seen it gone, and otherwise once the
// cached keys are older than KeysMaxAge.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	idp := testenv.StartOIDC(t)
	clk := &clock{now: time.Now()}
	a := authenticatorFor(idp, auth.IssuerConfig{KeysMaxAge: 5 * time.Minute, KeysMinRefetch: 10 * time.Second, Now: clk.Now})
	old, next := idp.ProviderKey(), testenv.NewSigningKey(t)
	check := func(what string, key testenv.SigningKey, wantOK bool) {
		t.Helper()
		// The tokens' own times follow the fake clock, so that advancing it
		// never expires them.
		now := clk.Now()
		claims := idp.Claims("alice", map[string]any{"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
		_, err := a.Authenticate(bearer(testenv.Sign(t, key, claims)))
		if wantOK && err != nil {
			t.Errorf("%s: refused: %v", what, err)
		}
		if !wantOK && !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%s: error = %v; want unauthenticated", what, err)
		}
	}

	check("old key before the rotation", old, true)
	idp.Publish(next)
	check("old key, rotated out, within the cache age", old, true)
	clk.Advance(11 * time.Second)
	check("new key, named by a token", next, true)
	check("old key after a fetch saw it gone", old, false)

	// Rotate back to the old key, then away again: this time no token names
	// the new key, so only the cache age ends the old one.
	idp.Publish(old)
	clk.Advance(5 * time.Minute)
	check("old key published again", old, true)
	idp.Publish(next)
	check("old key rotated out again, cached", old, true)
	fetches := idp.KeyFetches()
	clk.Advance(5 * time.Minute)
	check("old key after the cache aged", old, false)
	if idp.KeyFetches() != fetches+1 {
		t.Errorf("the keys were fetched %d times after the cache aged; want once", idp.KeyFetches()-fetches)
	}
}

// TestUnknownKeysDoNotHammerTheIssuer sends many tokens naming unknown keys
// and checks the keys are fetched once per KeysMinRefetch at most.
func TestUnknownKeysDoNotHammerTheIssuer(t *testing.T) {
	t.Parallel()
	idp := testenv.StartOIDC(t)
	clk := &clock{now: time.Now()}
	a := authenticatorFor(idp, auth.IssuerConfig{Now: clk.Now})
	if _, err := a.Authenticate(bearer(testenv.Sign(t, idp.ProviderKey(), idp.Claims("alice", nil)))); err != nil {
		t.Fatal(err)
	}
	before := idp.KeyFetches()
	stranger := testenv.NewSigningKey(t)
	for i := range 20 {
		key := testenv.SigningKey{Key: stranger.Key, Kid: stranger.Kid + string(rune('a'+i))}
		if _, err := a.Authenticate(bearer(testenv.Sign(t, key, idp.Claims("alice", nil)))); err == nil {
			t.Fatal("a token signed by an unknown key was accepted")
		}
	}
	if got := idp.KeyFetches() - before; got > 1 {
		t.Errorf("%d key fetches for 20 tokens within KeysMinRefetch; want at most 1", got)
	}
}

// TestIssuerDown answers an error that is not "unauthenticated" while the
// issuer cannot be reached, and works once it can.
func TestIssuerDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	issuer := srv.URL
	srv.Close()
	a := auth.NewAuthenticator(auth.Options{Issuers: []*auth.TokenIssuer{auth.NewTokenIssuer(auth.IssuerConfig{
		Issuer: issuer, Audiences: []string{"x"}})}})
	idp := testenv.StartOIDC(t)
	claims := idp.Claims("alice", map[string]any{"iss": issuer, "aud": "x"})
	_, err := a.Authenticate(bearer(testenv.Sign(t, idp.ProviderKey(), claims)))
	if err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Authenticate() error = %v; want an error other than unauthenticated", err)
	}
}

// TestTokenIssuerClockSkew signs in through the provider's real
// authorization-code flow with the provider's clock ahead of certkeeper's or
// behind it (its tokens live 10 minutes), with the default skew allowance
// of a minute. Within the allowance the token is accepted; beyond it, it is
// refused with a reason and an error that names the time claim, certkeeper's
// clock and the skew allowed.
func TestTokenIssuerClockSkew(t *testing.T) {
	t.Parallel()
	idp := testenv.StartOIDC(t)
	a := authenticatorFor(idp, auth.IssuerConfig{})
	roles := map[string]any{"roles": []string{"Acmebot.IssueCertificate"}}
	tests := []struct {
		skew   time.Duration
		reason string // "" when accepted
		want   string // in the error
	}{
		{-2 * time.Hour, auth.ReasonExpiredToken, "the token expired at"},
		{-12 * time.Minute, auth.ReasonExpiredToken, "check that the issuer's clock is not behind"},
		{-5 * time.Minute, "", ""},
		{-30 * time.Second, "", ""},
		{30 * time.Second, "", ""},
		{5 * time.Minute, auth.ReasonRejectedClaims, "check that the issuer's clock is not ahead"},
		{2 * time.Hour, auth.ReasonRejectedClaims, "the token is not valid before"},
	}
	for _, tt := range tests {
		// The provider's clock is shared: sign in one skew at a time.
		idp.FastForward(tt.skew)
		token := idp.Login(t, "alice", roles)
		idp.FastForward(-tt.skew)
		_, err := a.Authenticate(bearer(token))
		switch {
		case tt.reason == "" && err != nil:
			t.Errorf("issuer clock %v: refused: %v", tt.skew, err)
		case tt.reason != "":
			f, ok := errors.AsType[*auth.Failure](err)
			if !ok || f.Reason != tt.reason || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "certkeeper's clock") || !strings.Contains(err.Error(), "1m0s of clock skew allowed") {
				t.Errorf("issuer clock %v: error %v; want reason %s naming %q, certkeeper's clock and the skew allowed", tt.skew, err, tt.reason, tt.want)
			}
		}
		t.Logf("issuer clock %v: %v", tt.skew, err)
	}
}
