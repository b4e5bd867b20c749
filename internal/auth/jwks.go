package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// signingAlgs are the JWS algorithms accepted on tokens: every asymmetric
// one. Symmetric (HS*) algorithms and "none" are never accepted, so a
// public key can never be used as an HMAC secret.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

func signingAlgNames() []string {
	out := make([]string, len(signingAlgs))
	for i, a := range signingAlgs {
		out[i] = string(a)
	}
	return out
}

// keySet is an issuer's published signing keys (its JWKS), fetched and kept
// for at most maxAge, and fetched again at once when a token names a key
// that is not among them (at most once every minRefetch). A refetch replaces
// the set: a key the issuer no longer publishes is no longer accepted.
//
// go-oidc's own RemoteKeySet keeps keys until a token names an unknown one,
// so a key rotated out would be accepted for as long as the process runs;
// maxAge bounds that.
type keySet struct {
	url        string
	client     *http.Client
	maxAge     time.Duration
	minRefetch time.Duration
	now        func() time.Time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time
	triedAt   time.Time
	lastErr   error
}

var _ oidc.KeySet = (*keySet)(nil)

// errNoKeys is returned when the issuer's keys cannot be had at all.
var errNoKeys = errors.New("the issuer's signing keys are unavailable")

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

// fetchTimeout bounds one request to an issuer.
const fetchTimeout = 10 * time.Second

// VerifySignature implements oidc.KeySet: it returns the payload of the
// compact JWS raw when a published key verifies its signature.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, signingAlgs)
	if err != nil {
		return nil, fmt.Errorf("parsing the token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("the token must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, err := k.get(ctx, false)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if kid == "" || !hasKey(keys, kid) {
		// A key published since the last fetch.
		if keys, err = k.get(ctx, true); err != nil {
			return nil, err
		}
		if payload, ok := verifyWith(jws, keys, kid); ok {
			return payload, nil
		}
	}
	return nil, errors.New("no key the issuer publishes verifies the signature")
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

func hasKey(keys []jose.JSONWebKey, kid string) bool {
	for _, key := range keys {
		if key.KeyID == kid {
			return true
		}
	}
	return false
}

// get returns the keys, fetching them when none are held, when they are
// older than maxAge, or when force asks — but never more often than once
// every minRefetch. When a fetch fails the keys held are kept.
func (k *keySet) get(ctx context.Context, force bool) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	due := k.keys == nil || now.Sub(k.fetchedAt) >= k.maxAge || force
	if due && (k.triedAt.IsZero() || now.Sub(k.triedAt) >= k.minRefetch) {
		k.triedAt = now
		keys, err := k.fetch(ctx)
		if err == nil {
			k.keys, k.fetchedAt, k.lastErr = keys, now, nil
		} else {
			k.lastErr = err
		}
	}
	if k.keys == nil {
		return nil, fmt.Errorf("%w: %v", errNoKeys, k.lastErr)
	}
	return k.keys, nil
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching keys from %s: %w", k.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching keys: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return nil, fmt.Errorf("reading keys from %s: %w", k.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching keys from %s: status %d", k.url, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decoding keys from %s: %w", k.url, err)
	}
	var keys []jose.JSONWebKey
	for _, key := range set.Keys {
		if (key.Use == "" || key.Use == "sig") && key.IsPublic() && key.Valid() {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s publishes no public signing key", k.url)
	}
	return keys, nil
}
