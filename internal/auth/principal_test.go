package auth

import (
	"context"
	"testing"
)

func TestCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "www.example.com", true},
		{"example.com", "*.example.com", true},
		{"example.com", "a.b.example.com", true},
		{"example.com", "badexample.com", false},
		{"example.com", "example.com.evil.org", false},
		{"example.com", "other.org", false},
		{"Example.COM.", "www.example.com", true},
		{"*.dev.example.com", "dev.example.com", false},
		{"*.dev.example.com", "a.dev.example.com", true},
		{"*.dev.example.com", "*.dev.example.com", true},
		{"*.dev.example.com", "x.a.dev.example.com", true},
		{"*.dev.example.com", "www.example.com", false},
		{"*.dev.example.com", "xdev.example.com", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Covers(%q, %q) = %t; want %t", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestPrincipalAllows(t *testing.T) {
	t.Parallel()
	limited := Principal{RequireRoles: true, Grants: []Grant{
		{Roles: []Role{RoleIssue}, Zones: []string{"example.com"}},
		{Roles: []Role{RoleRevoke}, Zones: []string{"*.dev.example.com"}},
	}}
	everywhere := Principal{RequireRoles: true, Roles: []Role{RoleIssue}, Grants: []Grant{
		{Roles: []Role{RoleAdmin}, Zones: []string{"admin.example.com"}},
	}}
	open := Principal{}
	openLimited := Principal{Grants: []Grant{{Zones: []string{"example.com"}}}}
	tests := []struct {
		name  string
		p     Principal
		role  Role
		names []string
		want  bool
	}{
		{"issue in zone", limited, RoleIssue, []string{"www.example.com", "example.com"}, true},
		{"issue outside zone", limited, RoleIssue, []string{"other.org"}, false},
		{"issue partly outside", limited, RoleIssue, []string{"www.example.com", "other.org"}, false},
		{"revoke under dev", limited, RoleRevoke, []string{"a.dev.example.com"}, true},
		{"revoke elsewhere in example.com", limited, RoleRevoke, []string{"www.example.com"}, false},
		{"read in zone", limited, RoleReader, []string{"x.dev.example.com"}, true},
		{"read outside", limited, RoleReader, []string{"other.org"}, false},
		{"no names", limited, RoleReader, nil, false},
		{"unlimited issue", everywhere, RoleIssue, []string{"other.org"}, true},
		{"unlimited read", everywhere, RoleReader, []string{"other.org"}, true},
		{"admin in its zone", everywhere, RoleReadCertificate, []string{"www.admin.example.com"}, true},
		{"admin outside its zone", everywhere, RoleReadCertificate, []string{"www.example.com"}, false},
		{"roles not required", open, RoleRevoke, []string{"other.org"}, true},
		{"roles not required, never download", open, RoleReadCertificate, []string{"other.org"}, false},
		{"roles not required but limited", openLimited, RoleIssue, []string{"other.org"}, false},
		{"roles not required, in zone", openLimited, RoleIssue, []string{"www.example.com"}, true},
	}
	for _, tt := range tests {
		if got := tt.p.Allows(tt.role, tt.names); got != tt.want {
			t.Errorf("%s: Allows(%s, %v) = %t; want %t", tt.name, tt.role, tt.names, got, tt.want)
		}
	}
	for _, tt := range []struct {
		name string
		p    Principal
		role Role
		want bool
	}{
		{"limited reader", limited, RoleReader, false},
		{"unlimited reader", everywhere, RoleReader, true},
		{"zone admin is not an admin everywhere", everywhere, RoleAdmin, false},
		{"open reader", open, RoleReader, true},
		{"open limited", openLimited, RoleReader, false},
	} {
		if got := tt.p.Unlimited(tt.role); got != tt.want {
			t.Errorf("%s: Unlimited(%s) = %t; want %t", tt.name, tt.role, got, tt.want)
		}
	}
	if !limited.Overlaps("example.com") || !limited.Overlaps("dev.example.com") || limited.Overlaps("other.org") {
		t.Errorf("Overlaps of a principal limited to example.com is wrong")
	}
	if !limited.Overlaps("com") {
		t.Errorf("Overlaps(com) = false; want true: example.com is under it")
	}
}

func TestActor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p                     Principal
		want                  string
		kind, issuer, subject string
	}{
		{Principal{Kind: KindAPIKey, ID: "k1", Name: "ci"}, "key:k1", KindAPIKey, "", "k1"},
		{Principal{Name: "ci"}, "key:ci", KindAPIKey, "", "ci"},
		{Principal{Kind: KindToken, ID: "sub#1:x", Issuer: "https://idp.example/t"}, "oidc:https://idp.example/t#sub#1:x", KindToken, "https://idp.example/t", "sub#1:x"},
		{Principal{Kind: KindToken, ID: "abc", Issuer: "https://login.example/v2.0"}, "oidc:https://login.example/v2.0#abc", KindToken, "https://login.example/v2.0", "abc"},
		{Principal{Kind: KindLocal, Name: "root"}, "local:root", KindLocal, "", "root"},
		{Principal{Kind: KindSystem}, "system", KindSystem, "", ""},
	}
	for _, tt := range tests {
		got := tt.p.Actor()
		if got != tt.want {
			t.Errorf("Actor() = %q; want %q", got, tt.want)
		}
		kind, issuer, id := ParseActor(got)
		if kind != tt.kind || issuer != tt.issuer || id != tt.subject {
			t.Errorf("ParseActor(%q) = %q, %q, %q; want %q, %q, %q", got, kind, issuer, id, tt.kind, tt.issuer, tt.subject)
		}
	}
	ctx := NewContext(context.Background(), Principal{Name: "x"})
	if p, ok := FromContext(ctx); !ok || p.Name != "x" {
		t.Errorf("FromContext() = %v, %t", p, ok)
	}
	if _, ok := FromContext(context.Background()); ok {
		t.Errorf("FromContext(empty) ok")
	}
}
