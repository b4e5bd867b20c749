package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ErrKeyNotFound is returned by KeyStore.KeyByHash for an unknown key.
var ErrKeyNotFound = errors.New("api key not found")

// StoredKey is an API key as the key store holds it: never the key itself.
type StoredKey struct {
	ID   string
	Name string
	// Roles hold in Zones, or everywhere when Zones is empty.
	Roles []Role
	Zones []string
	// ExpiresAt is zero for a key that does not expire.
	ExpiresAt time.Time
	// LastUsedAt is zero for a key never used.
	LastUsedAt time.Time
}

// KeyStore finds API keys by the SHA-256 of the key. Implementations are
// safe for concurrent use.
type KeyStore interface {
	// KeyByHash returns the key whose hash is hash, or ErrKeyNotFound.
	KeyByHash(ctx context.Context, hash [32]byte) (StoredKey, error)
	// TouchKey records that the key with id was used at t.
	TouchKey(ctx context.Context, id string, at time.Time) error
}

// touchInterval is how stale a key's last use may get before it is written
// again: one write a minute per key at most, not one per request.
const touchInterval = time.Minute

// Options configure an Authenticator.
type Options struct {
	// Keys holds the API keys. Nil accepts no API key.
	Keys KeyStore
	// Issuers are the OIDC issuers whose bearer tokens are accepted.
	Issuers []*TokenIssuer
	// RequireRoles is the auth.requireRoles setting, carried into every
	// Principal.
	RequireRoles bool
	// Logger receives a warning when a key's last use cannot be recorded.
	// Nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authenticator tells who made a request, from an API key or an OIDC bearer
// token. It implements internal/api.Authenticator and is safe for concurrent
// use.
//
// API keys are looked up in the key store on every request, so a key
// created or revoked by any process sharing the database takes effect at
// the next request that presents it: there is no cache to go stale.
type Authenticator struct {
	keys         KeyStore
	issuers      map[string]*TokenIssuer
	requireRoles bool
	logger       *slog.Logger
	now          func() time.Time
}

// NewAuthenticator returns an Authenticator. Issuers with the same issuer
// URL are an error of the caller's configuration; the last one wins.
func NewAuthenticator(opts Options) *Authenticator {
	a := &Authenticator{keys: opts.Keys, issuers: map[string]*TokenIssuer{}, requireRoles: opts.RequireRoles,
		logger: opts.Logger, now: opts.Now}
	for _, iss := range opts.Issuers {
		a.issuers[iss.URL()] = iss
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// Authenticate returns the caller of r. It returns a *Failure (which matches
// ErrUnauthenticated) when r carries no credential or a refused one, and
// another error when the credential could not be checked (the database or
// the token's issuer is unreachable).
//
// The credential is, in this order: the X-Functions-Key header, the code
// query parameter, the X-Api-Key header, or an "Authorization: Bearer"
// value. A bearer value that starts with KeyPrefix is an API key; any other
// is an OIDC token.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	ctx := r.Context()
	if key, ok := credential(r); ok {
		return a.apiKey(ctx, key)
	}
	bearer, ok := bearerToken(r)
	if !ok {
		return Principal{}, &Failure{Reason: ReasonMissing}
	}
	if strings.HasPrefix(bearer, KeyPrefix) {
		return a.apiKey(ctx, bearer)
	}
	return a.token(ctx, bearer)
}

// bearerToken returns the value of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	value = strings.TrimSpace(value)
	return value, value != ""
}

func (a *Authenticator) apiKey(ctx context.Context, presented string) (Principal, error) {
	if a.keys == nil {
		return Principal{}, &Failure{Reason: ReasonUnknownKey, Method: MethodAPIKey}
	}
	k, err := a.keys.KeyByHash(ctx, HashKey(presented))
	if errors.Is(err, ErrKeyNotFound) {
		return Principal{}, &Failure{Reason: ReasonUnknownKey, Method: MethodAPIKey}
	}
	if err != nil {
		return Principal{}, fmt.Errorf("looking up api key: %w", err)
	}
	now := a.now()
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return Principal{}, &Failure{Reason: ReasonExpiredKey, Method: MethodAPIKey, KeyName: k.Name,
			Err: fmt.Errorf("the key expired at %s", k.ExpiresAt.UTC().Format(time.RFC3339))}
	}
	if now.Sub(k.LastUsedAt) >= touchInterval {
		if err := a.keys.TouchKey(ctx, k.ID, now); err != nil {
			a.logger.WarnContext(ctx, "recording the last use of an api key", "key_name", k.Name, "error", err)
		}
	}
	p := Principal{Kind: KindAPIKey, ID: k.ID, Name: k.Name, RequireRoles: a.requireRoles}
	if len(k.Zones) == 0 {
		p.Roles = slices.Clone(k.Roles)
	} else {
		p.Grants = []Grant{{Roles: slices.Clone(k.Roles), Zones: slices.Clone(k.Zones)}}
	}
	return p, nil
}

// maxShownIssuer bounds how much of an unverified issuer claim an error
// repeats.
const maxShownIssuer = 200

func (a *Authenticator) token(ctx context.Context, raw string) (Principal, error) {
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return Principal{}, &Failure{Reason: ReasonMalformedToken, Method: MethodToken, Err: err}
	}
	issuer, ok := a.issuers[iss]
	if !ok {
		if len(iss) > maxShownIssuer {
			iss = iss[:maxShownIssuer] + "…"
		}
		return Principal{}, &Failure{Reason: ReasonUnknownIssuer, Method: MethodToken,
			Err: fmt.Errorf("the token's issuer %q is not configured", iss)}
	}
	p, err := issuer.Verify(ctx, raw)
	if err != nil {
		return Principal{}, err
	}
	p.RequireRoles = a.requireRoles
	return p, nil
}

// unverifiedIssuer reads the iss claim of a compact JWS without checking
// anything, to choose the issuer that will check it.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("the token is not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("the token's payload is not base64url")
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", errors.New("the token's payload is not a JSON object")
	}
	if claims.Issuer == "" {
		return "", errors.New("the token has no issuer")
	}
	return claims.Issuer, nil
}
