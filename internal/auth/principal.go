// Package auth holds who may call the API: API keys (kept only as hashes and
// compared in constant time), the roles they carry, and the Principal a
// request is made by.
package auth

import (
	"errors"
	"slices"
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
var ErrUnauthenticated = errors.New("unauthenticated")

// Principal is who made a request.
type Principal struct {
	// Name is the API key's name (or, later, a token's subject).
	Name  string
	Roles []Role
	// RequireRoles mirrors the auth.requireRoles setting in force: when false
	// the issuing and revoking roles are implied, as in Acmebot.
	RequireRoles bool
}

// Has reports whether p may act with role. Admin implies every role; Reader
// is implied for everyone; Issue and Revoke are implied when roles are not
// required. ReadCertificate and Admin are never implied.
func (p Principal) Has(role Role) bool {
	if slices.Contains(p.Roles, RoleAdmin) || slices.Contains(p.Roles, role) {
		return true
	}
	switch role {
	case RoleReader:
		return true
	case RoleIssue, RoleRevoke:
		return !p.RequireRoles
	}
	return false
}
