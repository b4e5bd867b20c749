package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certkeeper/certkeeper/internal/auth"
)

// DefaultRateLimit is the per-caller limit on issue and renew requests.
var DefaultRateLimit = RateLimit{PerMinute: 30, Burst: 30}

// maxClockSkew is the largest auth.oidc[].clockSkew accepted.
const maxClockSkew = 10 * time.Minute

// OIDC is an issuer whose bearer tokens the API accepts: Microsoft Entra
// ID, Keycloak, Zitadel, Dex, Google, a CI platform's workload identity.
type OIDC struct {
	// Issuer is the issuer URL exactly as its tokens' iss claim has it; its
	// discovery document is <issuer>/.well-known/openid-configuration.
	Issuer string `yaml:"issuer"`
	// Audience is one accepted aud value or a list of them.
	Audience Strings `yaml:"audience"`
	// RolesClaim names the claim holding role names; default "roles". A
	// dotted path reaches into nested objects ("realm_access.roles").
	RolesClaim string `yaml:"rolesClaim"`
	// GroupsClaim names the claim holding groups; only roleMappings give
	// them meaning.
	GroupsClaim  string        `yaml:"groupsClaim"`
	RoleMappings []RoleMapping `yaml:"roleMappings"`
	// RequiredClaims refuse tokens whose claim holds none of the values
	// listed, for example repository_owner: [my-org].
	RequiredClaims map[string]Strings `yaml:"requiredClaims"`
	// ClockSkew allowed on exp, nbf and iat; default 1m.
	ClockSkew time.Duration `yaml:"clockSkew"`
	// KeysMaxAge is how long the issuer's published keys are used before
	// they are fetched again; default 10m.
	KeysMaxAge time.Duration `yaml:"keysMaxAge"`
	// DashboardClientID is the client id of the dashboard's public client
	// at this issuer (issue 9); when set, the sign-in page offers "Sign in
	// with <issuer>" (authorization code with PKCE, no client secret).
	DashboardClientID string `yaml:"dashboardClientId"`
	// DashboardScope is the scope the dashboard asks for; default
	// "openid". Ask for the API's scope here when the dashboard should send
	// the access token (see DashboardClientID).
	DashboardScope string `yaml:"dashboardScope"`
}

// RoleMapping gives roles, possibly limited to zones, to tokens whose claim
// holds Value.
type RoleMapping struct {
	// Claim is the claim to look in; empty means rolesClaim and groupsClaim.
	Claim string   `yaml:"claim"`
	Value string   `yaml:"value"`
	Roles []string `yaml:"roles"`
	// Zones limit the roles; empty is every zone.
	Zones []string `yaml:"zones"`
}

// RateLimit is a token bucket per caller: PerMinute requests a minute on
// average, up to Burst at once. PerMinute 0 turns it off.
type RateLimit struct {
	PerMinute float64 `yaml:"perMinute"`
	Burst     int     `yaml:"burst"`
}

// Strings is a list of strings that YAML may also give as one string.
type Strings []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Strings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var one string
		if err := n.Decode(&one); err != nil {
			return err
		}
		*s = Strings{one}
		return nil
	}
	var many []string
	if err := n.Decode(&many); err != nil {
		return err
	}
	*s = many
	return nil
}

// validateAccess checks the settings of issue 7: zones of API keys, OIDC
// issuers, the rate limit and the trusted proxies.
func (a *Auth) validateAccess(p *problems) {
	for i, k := range a.APIKeys {
		checkZones(p, fmt.Sprintf("auth.apiKeys[%d].zones", i), k.Zones)
	}
	issuers := map[string]int{}
	for i := range a.OIDC {
		o := &a.OIDC[i]
		path := fmt.Sprintf("auth.oidc[%d]", i)
		if o.Issuer == "" {
			p.add(path+".issuer", "required")
		} else if err := checkIssuer(o.Issuer); err != nil {
			p.add(path+".issuer", "%v", err)
		} else if first, ok := issuers[o.Issuer]; ok {
			p.add(path+".issuer", "%q is already the issuer of auth.oidc[%d]", o.Issuer, first)
		} else {
			issuers[o.Issuer] = i
		}
		if len(o.Audience) == 0 {
			p.add(path+".audience", "required: the aud value (or values) of the tokens certkeeper accepts")
		}
		for j, aud := range o.Audience {
			if strings.TrimSpace(aud) == "" {
				p.add(fmt.Sprintf("%s.audience[%d]", path, j), "must not be empty")
			}
		}
		if o.DashboardScope != "" && !slices.Contains(strings.Fields(o.DashboardScope), "openid") {
			p.add(path+".dashboardScope", "must include openid: the dashboard checks the ID token's nonce")
		}
		if o.DashboardScope != "" && o.DashboardClientID == "" {
			p.add(path+".dashboardScope", "set only with dashboardClientId")
		}
		for j, m := range o.RoleMappings {
			mp := fmt.Sprintf("%s.roleMappings[%d]", path, j)
			if m.Value == "" {
				p.add(mp+".value", "required")
			}
			if len(m.Roles) == 0 && len(m.Zones) == 0 {
				p.add(mp, "gives nothing: set roles, zones or both")
			}
			for k, r := range m.Roles {
				if !auth.ValidRole(r) {
					p.add(fmt.Sprintf("%s.roles[%d]", mp, k), "%q is not a role, use one of: %s", r, roleList())
				}
			}
			checkZones(p, mp+".zones", m.Zones)
		}
		for claim, values := range o.RequiredClaims {
			if len(values) == 0 {
				p.add(fmt.Sprintf("%s.requiredClaims.%s", path, claim), "list at least one accepted value")
			}
		}
		if o.ClockSkew < 0 || o.ClockSkew > maxClockSkew {
			p.add(path+".clockSkew", "must be between 0 and %s", maxClockSkew)
		}
		if o.KeysMaxAge < 0 {
			p.add(path+".keysMaxAge", "must not be negative")
		}
	}
	if a.RateLimit.PerMinute < 0 {
		p.add("auth.rateLimit.perMinute", "must not be negative (0 turns the limit off)")
	}
	if a.RateLimit.PerMinute > 0 && a.RateLimit.Burst < 1 {
		p.add("auth.rateLimit.burst", "must be at least 1")
	}
	for i, tp := range a.TrustedProxies {
		if _, err := ParseProxy(tp); err != nil {
			p.add(fmt.Sprintf("auth.trustedProxies[%d]", i), "%v", err)
		}
	}
}

func checkZones(p *problems, path string, zones []string) {
	for i, z := range zones {
		if _, err := auth.NormalizeZone(z); err != nil {
			p.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

// checkIssuer checks an issuer URL: https (http only on the loopback
// interface, for test issuers), without query or fragment.
func checkIssuer(s string) error {
	if err := checkACMEEndpoint(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%q must not have a query or fragment", s)
	}
	return nil
}

// ParseProxy reads a trusted proxy: an IP address or a CIDR range.
func ParseProxy(s string) (netip.Prefix, error) {
	if pfx, err := netip.ParsePrefix(s); err == nil {
		return pfx.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR range", s)
	}
	return netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()), nil
}
