package testenv

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// OIDC is a real OpenID Connect provider running in the test process:
// oauth2-proxy's mockoidc (discovery document, authorization-code flow,
// token endpoint, RS256-signed tokens), with its JWKS endpoint served from a
// key set the test can rotate (mockoidc itself publishes one fixed key).
//
// mockoidc is not safe for concurrent use; every request to it, and every
// method here, runs under one lock, so tests may use an OIDC from several
// goroutines.
type OIDC struct {
	m *mockoidc.MockOIDC
	// Issuer is the issuer URL (the iss of its tokens).
	Issuer string
	// ClientID is the audience of the tokens it issues.
	ClientID string

	// login makes each Login's queue-then-authorize one step.
	login     sync.Mutex
	mu        sync.Mutex
	published []jose.JSONWebKey
	fetches   int
	// public is set by AllowPublicClient.
	public bool
}

// SigningKey is a key an OIDC may sign with.
type SigningKey struct {
	Key *rsa.PrivateKey
	Kid string
}

// JWK is the public half of k as a JWKS entry.
func (k SigningKey) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.Key.PublicKey, KeyID: k.Kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// StartOIDC starts a provider on 127.0.0.1 that signs with, and publishes,
// one new key (ProviderKey), and stops it when the test ends.
func StartOIDC(t testing.TB) *OIDC {
	t.Helper()
	// A key of its own: mockoidc's default key is the same in every
	// instance, so two providers could verify each other's tokens.
	m, err := mockoidc.NewServer(NewSigningKey(t).Key)
	if err != nil {
		t.Fatalf("testenv: creating OIDC provider: %v", err)
	}
	// Computed once now: mockoidc computes it lazily, without a lock.
	if _, err := m.Keypair.KeyID(); err != nil {
		t.Fatalf("testenv: OIDC key id: %v", err)
	}
	o := &OIDC{m: m}
	o.published = []jose.JSONWebKey{o.ProviderKey().JWK()}
	if err := m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.public {
				w.Header().Set("Access-Control-Allow-Origin", "*")
				if r.URL.Path == mockoidc.TokenEndpoint && r.Method == http.MethodPost && !publicTokenRequest(w, r, o.m.ClientSecret) {
					return
				}
			}
			if r.URL.Path == mockoidc.JWKSEndpoint {
				o.fetches++
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: o.published})
				return
			}
			next.ServeHTTP(w, r)
		})
	}); err != nil {
		t.Fatalf("testenv: OIDC middleware: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: OIDC listener: %v", err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatalf("testenv: starting OIDC provider: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	o.Issuer, o.ClientID = m.Issuer(), m.ClientID
	return o
}

// AllowPublicClient makes the provider serve a browser's public client, as
// identity providers do for single-page applications: every answer allows
// any origin by CORS, and the token endpoint accepts a request without a
// client secret when it carries a PKCE code_verifier (mockoidc itself always
// wants the secret; it checks the verifier against the challenge).
func (o *OIDC) AllowPublicClient() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.public = true
}

// QueueUser makes subject, with claims besides the standard ones, the user
// the next authorization signs in (mockoidc auto-approves).
func (o *OIDC) QueueUser(subject string, claims map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m.QueueUser(oidcUser{subject: subject, claims: claims})
}

// publicTokenRequest adds the client secret to a token request from a
// public client; it refuses one that has neither a secret nor a verifier.
func publicTokenRequest(w http.ResponseWriter, r *http.Request, secret string) bool {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return false
	}
	if r.PostForm.Get("client_secret") != "" {
		return true
	}
	if r.PostForm.Get("code_verifier") == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"a public client must use PKCE"}`))
		return false
	}
	r.PostForm.Set("client_secret", secret)
	r.Form.Set("client_secret", secret)
	return true
}

// ProviderKey is the key mockoidc signs the tokens of Login with.
func (o *OIDC) ProviderKey() SigningKey {
	return SigningKey{Key: o.m.Keypair.PrivateKey, Kid: o.m.Keypair.Kid}
}

// NewSigningKey returns a new RSA key with a random key id.
func NewSigningKey(t testing.TB) SigningKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testenv: generating RSA key: %v", err)
	}
	kid := make([]byte, 8)
	_, _ = rand.Read(kid)
	return SigningKey{Key: key, Kid: base64.RawURLEncoding.EncodeToString(kid)}
}

// Publish makes keys the provider's whole JWKS: a key left out is rotated
// out.
func (o *OIDC) Publish(keys ...SigningKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.published = nil
	for _, k := range keys {
		o.published = append(o.published, k.JWK())
	}
}

// KeyFetches is how many times the JWKS was fetched.
func (o *OIDC) KeyFetches() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fetches
}

// FastForward moves the provider's clock by d (negative goes back), for
// tokens issued in the past.
func (o *OIDC) FastForward(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m.FastForward(d)
}

// oidcUser is a mockoidc.User whose ID token carries extra claims.
type oidcUser struct {
	subject string
	claims  map[string]any
}

func (u oidcUser) ID() string { return u.subject }

func (u oidcUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.subject})
}

func (u oidcUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return extraClaims{IDTokenClaims: base, extra: u.claims}, nil
}

// extraClaims marshals the standard claims and the extra ones side by side.
type extraClaims struct {
	*mockoidc.IDTokenClaims
	extra map[string]any
}

func (c extraClaims) MarshalJSON() ([]byte, error) {
	std, err := json.Marshal(c.IDTokenClaims)
	if err != nil {
		return nil, err
	}
	var all map[string]any
	if err := json.Unmarshal(std, &all); err != nil {
		return nil, err
	}
	for k, v := range c.extra {
		all[k] = v
	}
	return json.Marshal(all)
}

// Login signs subject in through the provider's authorization-code flow —
// authorize, then exchange the code at the token endpoint — and returns the
// ID token it issued: RS256 by ProviderKey, audience ClientID, valid for ten
// minutes, carrying claims besides the standard ones.
func (o *OIDC) Login(t testing.TB, subject string, claims map[string]any) string {
	t.Helper()
	o.login.Lock()
	defer o.login.Unlock()
	o.mu.Lock()
	o.m.QueueUser(oidcUser{subject: subject, claims: claims})
	o.mu.Unlock()
	const redirect = "http://127.0.0.1/callback"
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"client_id": {o.ClientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"s"}, "nonce": {"n"}}
	resp, err := client.Get(o.m.AuthorizationEndpoint() + "?" + q.Encode())
	if err != nil {
		t.Fatalf("testenv: OIDC authorize: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("testenv: OIDC authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"client_id": {o.ClientID}, "client_secret": {o.m.ClientSecret}, "redirect_uri": {redirect}}
	resp, err = client.Post(o.m.TokenEndpoint(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("testenv: OIDC token: %v", err)
	}
	defer resp.Body.Close()
	var tr struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK || tr.IDToken == "" {
		t.Fatalf("testenv: OIDC token endpoint answered %d (%v)", resp.StatusCode, err)
	}
	return tr.IDToken
}

// Sign returns a compact RS256 JWS of claims signed by key, with key's id in
// the header: tokens the provider would not issue (expired, for another
// audience, signed by a key it does not publish).
func Sign(t testing.TB, key SigningKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.Key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.Kid))
	if err != nil {
		t.Fatalf("testenv: signer: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("testenv: signing: %v", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Claims returns the standard claims of a token from o for subject, valid
// from now for ten minutes, with extra set over them (a nil value removes the
// claim).
func (o *OIDC) Claims(subject string, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": o.Issuer, "aud": o.ClientID, "sub": subject,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// Unsigned returns claims as a JWT with "alg": "none" and an empty
// signature.
func Unsigned(claims map[string]any) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	payload, _ := json.Marshal(claims)
	return header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}
