package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// The places a request may carry an API key, in the order they are looked at.
// The first one with a non-empty value is the credential; the others are
// ignored.
const (
	// HeaderFunctionsKey is the Azure Functions host-key header Acmebot
	// clients send.
	HeaderFunctionsKey = "X-Functions-Key"
	// QueryCode is the Azure Functions host-key query parameter.
	QueryCode = "code"
	// HeaderAPIKey is certkeeper's own header.
	HeaderAPIKey = "X-Api-Key"
)

// KeyPrefix starts every key made by GenerateKey, so that a leaked key is
// recognisable by secret scanners.
const KeyPrefix = "ck_"

// Key is an API key as it is kept: its name, the SHA-256 of the key, and its
// roles. The key itself is never kept. Key prints and logs without its hash.
type Key struct {
	Name  string
	Hash  [32]byte
	Roles []Role
}

// String implements fmt.Stringer: the name and roles, never the hash.
func (k Key) String() string { return fmt.Sprintf("auth.Key{Name:%q Roles:%v}", k.Name, k.Roles) }

// GoString implements fmt.GoStringer like String.
func (k Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer: the name and roles, never the hash.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", k.Name), slog.Any("roles", k.Roles))
}

// HashKey returns the SHA-256 of key, the form in which keys are kept and
// compared.
//
// A fast hash is enough here, unlike for passwords: the keys certkeeper
// generates (and the configured keys, which must be at least 16 characters)
// are meant to be random, high-entropy strings, so a stolen hash cannot be
// reversed by guessing, and a slow KDF would only add latency to every
// request. Comparing hashes of equal length also keeps the constant-time
// comparison independent of the presented key's length.
func HashKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// GenerateKey returns a new API key: KeyPrefix followed by 32 random bytes in
// unpadded base64url (46 characters in all).
func GenerateKey() (secret.String, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating api key: %w", err)
	}
	return secret.String(KeyPrefix + base64.RawURLEncoding.EncodeToString(raw)), nil
}

// Keys authenticates requests by a fixed set of API keys held in memory (the
// configured keys, for tools and tests); the service itself uses
// Authenticator, which also takes managed keys and OIDC tokens. It is
// immutable after NewKeys and safe for concurrent use. The zero value (or
// nil) authenticates no one.
type Keys struct {
	keys         []Key
	requireRoles bool
}

// NewKeys returns a Keys that accepts each of keys. requireRoles is the
// auth.requireRoles setting, carried into every Principal. keys is copied.
func NewKeys(keys []Key, requireRoles bool) *Keys {
	cp := make([]Key, len(keys))
	for i, k := range keys {
		cp[i] = Key{Name: k.Name, Hash: k.Hash, Roles: slices.Clone(k.Roles)}
	}
	return &Keys{keys: cp, requireRoles: requireRoles}
}

// String implements fmt.Stringer: how many keys, never their hashes.
func (k *Keys) String() string {
	if k == nil {
		return "auth.Keys(nil)"
	}
	return fmt.Sprintf("auth.Keys(%d keys, requireRoles=%t)", len(k.keys), k.requireRoles)
}

// GoString implements fmt.GoStringer like String.
func (k *Keys) GoString() string { return k.String() }

// LogValue implements slog.LogValuer: how many keys, never their hashes.
func (k *Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Authenticate returns the Principal of the API key r carries, or
// ErrUnauthenticated when it carries none or an unknown one. It implements
// internal/api.Authenticator.
//
// The key is taken from the X-Functions-Key header, the code query parameter
// or the X-Api-Key header, the first non-empty one winning. The SHA-256 of the
// presented key is compared with every stored hash in constant time, without
// stopping at a match, so the time taken does not tell which key (or how much
// of one) matched.
//
// An "Authorization: Bearer" token is not accepted: a request that carries
// only a bearer token is unauthenticated.
func (k *Keys) Authenticate(r *http.Request) (Principal, error) {
	presented, ok := credential(r)
	if !ok || k == nil {
		return Principal{}, ErrUnauthenticated
	}
	hash := HashKey(presented)
	found, index := 0, 0
	for i := range k.keys {
		match := subtle.ConstantTimeCompare(hash[:], k.keys[i].Hash[:])
		// Keep the first match: select i only when this key matches and no
		// earlier one did.
		first := match & (1 ^ found)
		index = subtle.ConstantTimeSelect(first, i, index)
		found |= match
	}
	if found != 1 {
		return Principal{}, ErrUnauthenticated
	}
	key := k.keys[index]
	return Principal{Name: key.Name, Roles: slices.Clone(key.Roles), RequireRoles: k.requireRoles}, nil
}

// credential returns the API key r carries, if any.
func credential(r *http.Request) (string, bool) {
	if v := r.Header.Get(HeaderFunctionsKey); v != "" {
		return v, true
	}
	if r.URL != nil {
		if v := r.URL.Query().Get(QueryCode); v != "" {
			return v, true
		}
	}
	if v := r.Header.Get(HeaderAPIKey); v != "" {
		return v, true
	}
	return "", false
}
