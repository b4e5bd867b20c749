package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Defaults of IssuerConfig.
const (
	DefaultRolesClaim = "roles"
	// DefaultClockSkew is how far the issuer's clock and certkeeper's may
	// disagree on exp, nbf and iat.
	DefaultClockSkew = time.Minute
	// DefaultKeysMaxAge is how long an issuer's published keys are used
	// before they are fetched again; it bounds how long a key the issuer
	// rotated out is still accepted.
	DefaultKeysMaxAge = 10 * time.Minute
	// DefaultKeysMinRefetch is the least time between two fetches of an
	// issuer's keys, so that tokens naming unknown keys cannot make
	// certkeeper hammer the issuer.
	DefaultKeysMinRefetch = 10 * time.Second
	// discoveryRetry is the least time between two failed discoveries.
	discoveryRetry = 10 * time.Second
)

// Mapping gives roles, possibly limited to zones, to the tokens that carry
// a claim value.
type Mapping struct {
	// Claim is the claim to look in (a name, or a dotted path into nested
	// objects); empty means the roles claim and the groups claim.
	Claim string
	// Value is the value that selects the mapping: a role or group name, a
	// group's object id, a repository, and so on.
	Value string
	Roles []Role
	// Zones limit the roles; empty means every zone.
	Zones []string
}

// IssuerConfig is one OIDC issuer whose tokens are accepted.
type IssuerConfig struct {
	// Issuer is the issuer URL, exactly as the tokens' iss claim and the
	// discovery document name it.
	Issuer string
	// Audiences are accepted aud values; a token must name one of them.
	Audiences []string
	// RolesClaim names the claim holding role names (default "roles"):
	// values that are certkeeper role names give that role in every zone,
	// unless a Mapping selects them. A dotted path reaches into nested
	// objects ("realm_access.roles"); a claim that is an object contributes
	// its keys (Zitadel's role claim).
	RolesClaim string
	// GroupsClaim names the claim holding group names or ids; only Mappings
	// give them meaning. Empty means none.
	GroupsClaim string
	Mappings    []Mapping
	// RequiredClaims must each hold one of the values listed, or the token
	// is refused (for example repository_owner for a CI platform's tokens).
	RequiredClaims map[string][]string
	// ClockSkew defaults to DefaultClockSkew.
	ClockSkew time.Duration
	// KeysMaxAge and KeysMinRefetch default to DefaultKeysMaxAge and
	// DefaultKeysMinRefetch.
	KeysMaxAge     time.Duration
	KeysMinRefetch time.Duration
	// HTTPClient fetches the discovery document and keys; nil means one with
	// a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// TokenIssuer verifies the bearer tokens of one OIDC issuer. Discovery runs
// on the first token, and again after a failure (at most every 10 s), so
// that an issuer that is down when certkeeper starts does not stop it. Safe
// for concurrent use.
type TokenIssuer struct {
	cfg IssuerConfig

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	keys     *keySet
	triedAt  time.Time
	lastErr  error
}

// NewTokenIssuer returns a TokenIssuer for cfg, filling in its defaults.
func NewTokenIssuer(cfg IssuerConfig) *TokenIssuer {
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = DefaultRolesClaim
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.KeysMaxAge == 0 {
		cfg.KeysMaxAge = DefaultKeysMaxAge
	}
	if cfg.KeysMinRefetch == 0 {
		cfg.KeysMinRefetch = DefaultKeysMinRefetch
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &TokenIssuer{cfg: cfg}
}

// URL is the issuer URL.
func (t *TokenIssuer) URL() string { return t.cfg.Issuer }

// verifierFor returns the verifier, running discovery when there is none.
func (t *TokenIssuer) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.verifier != nil {
		return t.verifier, nil
	}
	now := t.cfg.Now()
	if t.lastErr != nil && now.Sub(t.triedAt) < discoveryRetry {
		return nil, t.lastErr
	}
	t.triedAt = now
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, t.cfg.HTTPClient), t.cfg.Issuer)
	if err != nil {
		t.lastErr = fmt.Errorf("discovering OIDC issuer %s: %w", t.cfg.Issuer, err)
		return nil, t.lastErr
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
		t.lastErr = fmt.Errorf("discovering OIDC issuer %s: the discovery document names no jwks_uri", t.cfg.Issuer)
		return nil, t.lastErr
	}
	t.keys = &keySet{url: meta.JWKSURI, client: t.cfg.HTTPClient, maxAge: t.cfg.KeysMaxAge,
		minRefetch: t.cfg.KeysMinRefetch, now: t.cfg.Now}
	t.verifier = oidc.NewVerifier(t.cfg.Issuer, t.keys, &oidc.Config{
		// Audiences, expiry and not-before are checked below: go-oidc
		// takes one audience and no skew on exp.
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: signingAlgNames(),
	})
	t.lastErr = nil
	return t.verifier, nil
}

// Verify checks a bearer token — signature by a key the issuer publishes,
// issuer, audience, expiry, not-before and issued-at with the clock skew
// allowed, subject, required claims — and returns its Principal (without
// RequireRoles). A refused token is a *Failure; an issuer that cannot be
// reached is another error.
func (t *TokenIssuer) Verify(ctx context.Context, raw string) (Principal, error) {
	fail := func(reason string, err error) (Principal, error) {
		return Principal{}, &Failure{Reason: reason, Method: MethodToken, Issuer: t.cfg.Issuer, Err: err}
	}
	v, err := t.verifierFor(ctx)
	if err != nil {
		return Principal{}, err
	}
	if _, err := t.keys.get(ctx, false); err != nil {
		return Principal{}, fmt.Errorf("verifying a token of %s: %w", t.cfg.Issuer, err)
	}
	tok, err := v.Verify(oidc.ClientContext(ctx, t.cfg.HTTPClient), raw)
	if err != nil {
		if strings.Contains(err.Error(), "malformed jwt") {
			return fail(ReasonMalformedToken, err)
		}
		return fail(ReasonBadSignature, err)
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(t.cfg.Audiences, a) }) {
		return fail(ReasonWrongAudience, fmt.Errorf("the token's audience %q is none of %q", tok.Audience, t.cfg.Audiences))
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return fail(ReasonMalformedToken, err)
	}
	now, skew := t.cfg.Now(), t.cfg.ClockSkew
	if tok.Expiry.IsZero() {
		return fail(ReasonRejectedClaims, errors.New("the token has no exp claim"))
	}
	if now.After(tok.Expiry.Add(skew)) {
		return fail(ReasonExpiredToken, fmt.Errorf("the token expired at %s%s", tok.Expiry.UTC().Format(time.RFC3339),
			clockNote(now, skew, now.Sub(tok.Expiry), "ago", "behind")))
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && now.Add(skew).Before(nbf) {
		return fail(ReasonRejectedClaims, fmt.Errorf("the token is not valid before %s%s", nbf.UTC().Format(time.RFC3339),
			clockNote(now, skew, nbf.Sub(now), "from now", "ahead of")))
	}
	if !tok.IssuedAt.IsZero() && now.Add(skew).Before(tok.IssuedAt) {
		return fail(ReasonRejectedClaims, fmt.Errorf("the token was issued in the future, at %s%s", tok.IssuedAt.UTC().Format(time.RFC3339),
			clockNote(now, skew, tok.IssuedAt.Sub(now), "from now", "ahead of")))
	}
	if tok.Subject == "" {
		return fail(ReasonRejectedClaims, errors.New("the token has no sub claim"))
	}
	for claim, allowed := range t.cfg.RequiredClaims {
		if !slices.ContainsFunc(claimValues(claims, claim), func(v string) bool { return slices.Contains(allowed, v) }) {
			return fail(ReasonRejectedClaims, fmt.Errorf("the token's %s claim is not one of %q", claim, allowed))
		}
	}
	p := Principal{Kind: KindToken, ID: tok.Subject, Name: tok.Subject, Issuer: t.cfg.Issuer}
	p.Roles, p.Grants = t.grants(claims)
	return p, nil
}

// grants returns the roles a token's claims give everywhere and the
// zone-limited grants.
func (t *TokenIssuer) grants(claims map[string]any) ([]Role, []Grant) {
	roles := claimValues(claims, t.cfg.RolesClaim)
	var selectable []string
	selectable = append(selectable, roles...)
	if t.cfg.GroupsClaim != "" {
		selectable = append(selectable, claimValues(claims, t.cfg.GroupsClaim)...)
	}
	var (
		unlimited []Role
		grants    []Grant
		mapped    = map[string]bool{}
	)
	for _, m := range t.cfg.Mappings {
		values := selectable
		if m.Claim != "" {
			values = claimValues(claims, m.Claim)
		}
		if !slices.Contains(values, m.Value) {
			continue
		}
		if m.Claim == "" || m.Claim == t.cfg.RolesClaim {
			mapped[m.Value] = true
		}
		if len(m.Zones) == 0 {
			unlimited = append(unlimited, m.Roles...)
		} else {
			grants = append(grants, Grant{Roles: slices.Clone(m.Roles), Zones: slices.Clone(m.Zones)})
		}
	}
	for _, r := range roles {
		if !mapped[r] && ValidRole(r) {
			unlimited = append(unlimited, Role(r))
		}
	}
	slices.Sort(unlimited)
	return slices.Compact(unlimited), grants
}

// claimValues returns the values of a claim as strings: the claim named
// path, or else the one a dotted path reaches through nested objects. A
// string is one value, an array its strings, numbers and booleans, an
// object its keys (sorted).
func claimValues(claims map[string]any, path string) []string {
	v, ok := claims[path]
	if !ok {
		var cur any = claims
		for part := range strings.SplitSeq(path, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				return nil
			}
			if cur, ok = m[part]; !ok {
				return nil
			}
		}
		v = cur
	}
	switch v := v.(type) {
	case []any:
		var out []string
		for _, item := range v {
			if s, ok := scalar(item); ok {
				out = append(out, s)
			}
		}
		return out
	case map[string]any:
		out := make([]string, 0, len(v))
		for k := range v {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if s, ok := scalar(v); ok {
		return []string{s}
	}
	return nil
}

func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// numericDate reads a JWT NumericDate (RFC 7519 section 2).
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// clockNote explains a time claim refused for being off (ago or from
// now): by how much by certkeeper's clock, what that clock reads and the
// skew allowed, and, when off is within an hour — more likely a wrong clock
// than a stale or forged token — that the issuer's clock may be the given
// way off.
func clockNote(now time.Time, skew, off time.Duration, when, way string) string {
	note := fmt.Sprintf(" (%s %s by certkeeper's clock, which reads %s; %s of clock skew allowed)",
		off.Round(time.Second), when, now.UTC().Format(time.RFC3339), skew)
	if off <= time.Hour {
		note += "; check that the issuer's clock is not " + way + " certkeeper's"
	}
	return note
}
