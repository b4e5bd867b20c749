package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadAccess(t *testing.T) {
	t.Parallel()
	yaml := `
auth:
  requireRoles: true
  apiKeys:
    - name: team-a
      key: team-a-key-0123456789
      roles: [Acmebot.IssueCertificate]
      zones: [a.example.com, "*.dev.example.com"]
  oidc:
    - issuer: https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0
      audience: api://certkeeper
    - issuer: https://token.actions.githubusercontent.com
      audience: [certkeeper, certkeeper-staging]
      rolesClaim: realm_access.roles
      groupsClaim: groups
      requiredClaims:
        repository_owner: my-org
      roleMappings:
        - claim: repository
          value: my-org/infra
          roles: [Acmebot.IssueCertificate]
          zones: [infra.example.com]
      clockSkew: 30s
      keysMaxAge: 5m
  rateLimit:
    perMinute: 5
  trustedProxies: [10.0.0.0/8, "::1"]
`
	c, err := load([]byte(yaml), nil)
	if err != nil {
		t.Fatalf("load() error = %v", err)
	}
	want := Auth{
		RequireRoles: true,
		APIKeys: []APIKey{{Name: "team-a", Key: "team-a-key-0123456789", Roles: []string{"Acmebot.IssueCertificate"},
			Zones: []string{"a.example.com", "*.dev.example.com"}}},
		OIDC: []OIDC{
			{Issuer: "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0", Audience: Strings{"api://certkeeper"}},
			{Issuer: "https://token.actions.githubusercontent.com", Audience: Strings{"certkeeper", "certkeeper-staging"},
				RolesClaim: "realm_access.roles", GroupsClaim: "groups",
				RequiredClaims: map[string]Strings{"repository_owner": {"my-org"}},
				RoleMappings: []RoleMapping{{Claim: "repository", Value: "my-org/infra", Roles: []string{"Acmebot.IssueCertificate"},
					Zones: []string{"infra.example.com"}}},
				ClockSkew: 30 * time.Second, KeysMaxAge: 5 * time.Minute},
		},
		RateLimit:      RateLimit{PerMinute: 5, Burst: 30},
		TrustedProxies: []string{"10.0.0.0/8", "::1"},
	}
	if diff := cmp.Diff(want, c.Auth); diff != "" {
		t.Errorf("Auth mismatch (-want +got):\n%s", diff)
	}
}

func TestValidateAccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"bad key zone", func(c *Config) { c.Auth.APIKeys[0].Zones = []string{"exa mple.com", "*.ok.example.com"} },
			[]string{`auth.apiKeys[0].zones[0]: invalid DNS name "exa mple.com": label "exa mple" has a character other than a letter, digit or hyphen`}},
		{"issuer problems", func(c *Config) {
			c.Auth.OIDC = []OIDC{
				{},
				{Issuer: "http://idp.example.com", Audience: Strings{""}},
				{Issuer: "https://idp.example.com/?x=1", Audience: Strings{"a"}},
				{Issuer: "https://idp.example.com", Audience: Strings{"a"}, ClockSkew: time.Hour, KeysMaxAge: -1},
				{Issuer: "https://idp.example.com", Audience: Strings{"a"}, RequiredClaims: map[string]Strings{"sub": {}},
					RoleMappings: []RoleMapping{{}, {Value: "x", Roles: []string{"Admin"}, Zones: []string{"-bad.example.com"}}}},
			}
		}, []string{
			"auth.oidc[0].issuer: required",
			"auth.oidc[0].audience: required: the aud value (or values) of the tokens certkeeper accepts",
			`auth.oidc[1].issuer: "http://idp.example.com" must use https (http only for 127.0.0.1 or localhost)`,
			"auth.oidc[1].audience[0]: must not be empty",
			`auth.oidc[2].issuer: "https://idp.example.com/?x=1" must not have a query or fragment`,
			"auth.oidc[3].clockSkew: must be between 0 and 10m0s",
			"auth.oidc[3].keysMaxAge: must not be negative",
			`auth.oidc[4].issuer: "https://idp.example.com" is already the issuer of auth.oidc[3]`,
			"auth.oidc[4].roleMappings[0].value: required",
			"auth.oidc[4].roleMappings[0]: gives nothing: set roles, zones or both",
			`auth.oidc[4].roleMappings[1].roles[0]: "Admin" is not a role, use one of: ` + roleList(),
			`auth.oidc[4].roleMappings[1].zones[0]: invalid DNS name "-bad.example.com": label "-bad" starts or ends with a hyphen`,
			"auth.oidc[4].requiredClaims.sub: list at least one accepted value",
		}},
		{"dashboard client", func(c *Config) {
			c.Auth.OIDC = []OIDC{
				{Issuer: "https://a.example.com", Audience: Strings{"api"}, DashboardClientID: "spa", DashboardScope: "openid api://x/.default"},
				{Issuer: "https://b.example.com", Audience: Strings{"api"}, DashboardClientID: "spa", DashboardScope: "profile"},
				{Issuer: "https://c.example.com", Audience: Strings{"api"}, DashboardScope: "openid"},
			}
		}, []string{
			"auth.oidc[1].dashboardScope: must include openid: the dashboard checks the ID token's nonce",
			"auth.oidc[2].dashboardScope: set only with dashboardClientId",
		}},
		{"rate limit", func(c *Config) { c.Auth.RateLimit = RateLimit{PerMinute: 1, Burst: 0} },
			[]string{"auth.rateLimit.burst: must be at least 1"}},
		{"negative rate", func(c *Config) { c.Auth.RateLimit = RateLimit{PerMinute: -1} },
			[]string{"auth.rateLimit.perMinute: must not be negative (0 turns the limit off)"}},
		{"rate limit off", func(c *Config) { c.Auth.RateLimit = RateLimit{} }, nil},
		{"proxies", func(c *Config) { c.Auth.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1", "proxy.local"} },
			[]string{`auth.trustedProxies[2]: "proxy.local" is neither an IP address nor a CIDR range`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.modify(&c)
			if diff := cmp.Diff(tt.want, problemTexts(c.Validate())); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
