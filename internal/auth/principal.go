// Package auth holds who may call the API: API keys (kept only as hashes),
// OIDC bearer tokens from any number of issuers, the roles and zone-limited
// grants they carry, the Principal a request is made by, and counters of
// authentication outcomes for the metrics endpoint.
package auth

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/certkeeper/certkeeper/internal/certificate"
)

// Role is a permission. The names are fixed: configs name them.
type Role string

// The roles. Reader is what every authenticated caller has.
const (
	RoleIssue           Role = "Acmebot.IssueCertificate"
	RoleRevoke          Role = "Acmebot.RevokeCertificate"
	RoleReader          Role = "Certkeeper.Reader"
	RoleReadCertificate Role = "Certkeeper.ReadCertificate"
	RoleAdmin           Role = "Certkeeper.Admin"
)

// Roles lists every role, for validation.
var Roles = []Role{RoleIssue, RoleRevoke, RoleReader, RoleReadCertificate, RoleAdmin}

// ValidRole reports whether name is one of Roles.
func ValidRole(name string) bool { return slices.Contains(Roles, Role(name)) }

// ErrUnauthenticated is returned when a request carries no valid credential.
// Authenticators return it wrapped in a *Failure that says why.
var ErrUnauthenticated = errors.New("unauthenticated")

// The kinds of callers, the first part of an actor id.
const (
	KindAPIKey = "key"
	KindToken  = "oidc"
	// KindLocal is a person at the server's console (the CLI's offline
	// commands); Name is the operating-system user.
	KindLocal = "local"
	// KindSystem is certkeeper itself (scheduled renewals).
	KindSystem = "system"
)

// Grant is a set of roles limited to zones.
type Grant struct {
	Roles []Role
	// Zones are the zone patterns the roles hold in: "example.com" covers
	// example.com and every name under it, "*.dev.example.com" only the
	// names under dev.example.com. Empty means every zone.
	Zones []string
}

// Principal is who made a request: an API key, a token's subject, or a
// person at the console.
//
// What it may do is the union of its grants: Roles hold in every zone, each
// of Grants only in its zones. A principal with neither has one empty grant
// in every zone, so that it may read (and, when roles are not required,
// issue, renew and revoke) anywhere, as in Acmebot. A principal whose only
// grants are zone-limited is limited to those zones for everything,
// reading included.
type Principal struct {
	// Kind is KindAPIKey, KindToken, KindLocal or KindSystem; empty is
	// treated as KindAPIKey.
	Kind string
	// ID is stable across renames: an API key's id, or a token's subject.
	// Empty means Name.
	ID string
	// Name is what people see: the API key's name, or the token's subject.
	Name string
	// Issuer is the token's issuer; empty for other kinds.
	Issuer string
	// Roles hold in every zone.
	Roles []Role
	// Grants are roles limited to zones.
	Grants []Grant
	// RequireRoles mirrors the auth.requireRoles setting in force: when false
	// the issuing and revoking roles are implied, as in Acmebot.
	RequireRoles bool
}

// Actor is the stable identifier of p, recorded as the creator of its
// operations and in the audit log: "key:<id>", "oidc:<issuer>#<subject>",
// "local:<user>" or "system".
func (p Principal) Actor() string {
	kind := p.Kind
	if kind == "" {
		kind = KindAPIKey
	}
	id := p.ID
	if id == "" {
		id = p.Name
	}
	switch kind {
	case KindSystem:
		return KindSystem
	case KindToken:
		return KindToken + ":" + p.Issuer + "#" + id
	}
	return kind + ":" + id
}

// ParseActor splits an actor id made by Principal.Actor into its kind, the
// token issuer (for tokens) and the id.
func ParseActor(actor string) (kind, issuer, id string) {
	kind, rest, ok := strings.Cut(actor, ":")
	if !ok {
		return actor, "", ""
	}
	if kind == KindToken {
		// An issuer URL has no fragment (OpenID Connect Discovery section
		// 3); a subject may hold any character.
		if iss, sub, ok := strings.Cut(rest, "#"); ok {
			return kind, iss, sub
		}
	}
	return kind, "", rest
}

// grants returns every grant of p, the unlimited one (Roles) first.
func (p Principal) grants() []Grant {
	if len(p.Roles) == 0 && len(p.Grants) > 0 {
		return p.Grants
	}
	return append([]Grant{{Roles: p.Roles}}, p.Grants...)
}

// holds reports whether a grant of roles gives role: Admin gives every role,
// every grant gives Reader, and Issue and Revoke are implied when roles are
// not required. ReadCertificate and Admin are never implied.
func holds(roles []Role, role Role, requireRoles bool) bool {
	if slices.Contains(roles, RoleAdmin) || slices.Contains(roles, role) {
		return true
	}
	switch role {
	case RoleReader:
		return true
	case RoleIssue, RoleRevoke:
		return !requireRoles
	}
	return false
}

// Has reports whether p may act with role in at least one zone. It is the
// check made before a request is read; Allows then checks the names.
func (p Principal) Has(role Role) bool {
	for _, g := range p.grants() {
		if holds(g.Roles, role, p.RequireRoles) {
			return true
		}
	}
	return false
}

// Unlimited reports whether p may act with role in every zone.
func (p Principal) Unlimited(role Role) bool {
	for _, g := range p.grants() {
		if len(g.Zones) == 0 && holds(g.Roles, role, p.RequireRoles) {
			return true
		}
	}
	return false
}

// Allows reports whether p may act with role on a certificate for names:
// one grant must give the role and cover every name. Names are normalised
// DNS names (lowercase, punycode, no trailing dot), possibly wildcards.
func (p Principal) Allows(role Role, names []string) bool {
	for _, g := range p.grants() {
		if !holds(g.Roles, role, p.RequireRoles) {
			continue
		}
		if len(g.Zones) == 0 || coversAll(g.Zones, names) {
			return true
		}
	}
	return false
}

// Overlaps reports whether p may read anything in zone: a grant covers the
// zone, or a name under it.
func (p Principal) Overlaps(zone string) bool {
	zone = normalizeZone(zone)
	for _, g := range p.grants() {
		if len(g.Zones) == 0 {
			return true
		}
		for _, pattern := range g.Zones {
			base := strings.TrimPrefix(normalizeZone(pattern), "*.")
			if Covers(pattern, zone) || base == zone || strings.HasSuffix(base, "."+zone) {
				return true
			}
		}
	}
	return false
}

// Covers reports whether the zone pattern covers name: "example.com" covers
// example.com and every name under it (*.example.com included);
// "*.example.com" covers only the names under example.com. Both are
// compared without case and trailing dot.
func Covers(pattern, name string) bool {
	pattern, name = normalizeZone(pattern), normalizeZone(name)
	if base, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(name, "."+base)
	}
	return name == pattern || strings.HasSuffix(name, "."+pattern)
}

func coversAll(patterns, names []string) bool {
	if len(names) == 0 {
		return false
	}
	for _, n := range names {
		if !slices.ContainsFunc(patterns, func(p string) bool { return Covers(p, n) }) {
			return false
		}
	}
	return true
}

func normalizeZone(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// principalKey is the context key of the caller.
type principalKey struct{}

// NewContext returns ctx carrying p, the caller of the request ctx belongs
// to; the job queue records it as the creator of the operations it enqueues.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller NewContext put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// NormalizeZone returns a zone pattern ("example.com", "*.dev.example.com")
// in the form Covers compares: lowercase ASCII, punycode, no trailing dot.
// Unicode names are converted with IDNA. The error says what is wrong.
func NormalizeZone(pattern string) (string, error) {
	return certificate.NormalizeDNSName(pattern)
}
