// Package namecheap holds a DNS provider for Namecheap's XML API
// (https://www.namecheap.com/support/api/methods/): every call is a POST to
// /xml.response with the form fields ApiUser, ApiKey, UserName, ClientIp
// and Command, and the answer is an <ApiResponse Status="OK|ERROR"> with
// HTTP 200 either way:
//
//	namecheap.domains.getList        Page, PageSize   the account's domains
//	namecheap.domains.dns.getList    SLD, TLD         the name servers
//	namecheap.domains.dns.getHosts   SLD, TLD         every host record
//	namecheap.domains.dns.setHosts   SLD, TLD, HostNameN, RecordTypeN,
//	                                 AddressN, MXPrefN, TTLN, EmailType
//
// setHosts replaces the domain's whole host list, so a change reads the
// list, edits the TXT records at one name and writes every record back;
// changes through one Provider are serialized. The ClientIp must be on the
// account's API allow list.
package namecheap

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Endpoints of the production and sandbox APIs.
const (
	DefaultEndpoint = "https://api.namecheap.com"
	SandboxEndpoint = "https://api.sandbox.namecheap.com"
)

// minTTL is Namecheap's smallest TTL; pageSize the domains asked per page
// (at most 100).
const (
	minTTL   = 60
	pageSize = 100
)

// Config is what a Provider needs.
type Config struct {
	APIUser string
	APIKey  secret.String
	// UserName is the account acted for; default APIUser.
	UserName string
	// ClientIP is the allow-listed IPv4 address of this host.
	ClientIP string
	// Endpoint replaces DefaultEndpoint.
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one Namecheap account. It is safe for concurrent use.
type Provider struct {
	api  *rest.Client
	auth func() url.Values
	ttl  int
	// mu serializes read-modify-write of a domain's host list.
	mu sync.Mutex
}

var (
	_ dns.Provider           = (*Provider)(nil)
	_ dns.ZoneLister         = (*Provider)(nil)
	_ dns.NameServerReporter = (*Provider)(nil)
)

// New checks cfg and returns a Provider. It does not contact the API.
func New(cfg Config) (*Provider, error) {
	base, err := rest.ParseBase(cmp.Or(cfg.Endpoint, DefaultEndpoint))
	if err != nil {
		return nil, fmt.Errorf("configuring Namecheap: endpoint: %w", err)
	}
	if cfg.APIUser == "" || cfg.APIKey == "" || cfg.ClientIP == "" {
		return nil, errors.New("configuring Namecheap: apiUser, apiKey and clientIp are required")
	}
	user := cfg.UserName
	if user == "" {
		user = cfg.APIUser
	}
	apiUser, key, ip := cfg.APIUser, cfg.APIKey, cfg.ClientIP
	return &Provider{
		api: &rest.Client{BaseURL: base.JoinPath("xml.response"), HTTP: cfg.HTTPClient,
			ContentType: "application/x-www-form-urlencoded"},
		auth: func() url.Values {
			return url.Values{"ApiUser": {apiUser}, "ApiKey": {key.Reveal()}, "UserName": {user}, "ClientIp": {ip}}
		},
		ttl: min(max(cfg.TTL, minTTL), 60000),
	}, nil
}

// response is an ApiResponse; Command holds the command's own result.
type response struct {
	Status string `xml:"Status,attr"`
	Errors []struct {
		Number  string `xml:"Number,attr"`
		Message string `xml:",chardata"`
	} `xml:"Errors>Error"`
	Command struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"CommandResponse"`
}

// call sends command with params and decodes the command's result into
// out. An ApiResponse with Status ERROR is an error with Namecheap's words.
func (p *Provider) call(ctx context.Context, command string, params url.Values, out any) error {
	form := p.auth()
	form.Set("Command", command)
	for k, v := range params {
		form[k] = v
	}
	data, err := p.api.Raw(ctx, http.MethodPost, "", nil, []byte(form.Encode()))
	if err != nil {
		return err
	}
	var r response
	if err := xml.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: decoding answer: %w", command, err)
	}
	if !strings.EqualFold(r.Status, "OK") {
		var msgs []string
		for _, e := range r.Errors {
			msgs = append(msgs, fmt.Sprintf("%s (%s)", strings.TrimSpace(e.Message), e.Number))
		}
		if len(msgs) == 0 {
			msgs = append(msgs, "status "+r.Status)
		}
		return fmt.Errorf("%s: %s", command, strings.Join(msgs, "; "))
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal([]byte("<r>"+string(r.Command.Inner)+"</r>"), out); err != nil {
		return fmt.Errorf("%s: decoding result: %w", command, err)
	}
	return nil
}

// Zones implements dns.ZoneLister.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	var names []string
	for page := 1; ; page++ {
		var out struct {
			Domains []struct {
				Name string `xml:"Name,attr"`
			} `xml:"DomainGetListResult>Domain"`
			Total int `xml:"Paging>TotalItems"`
		}
		q := url.Values{"Page": {strconv.Itoa(page)}, "PageSize": {strconv.Itoa(pageSize)}}
		if err := p.call(ctx, "namecheap.domains.getList", q, &out); err != nil {
			return nil, fmt.Errorf("listing domains: %w", err)
		}
		for _, d := range out.Domains {
			names = append(names, d.Name)
		}
		if len(out.Domains) == 0 || len(names) >= out.Total {
			return names, nil
		}
	}
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// split returns the SLD and TLD of a registered domain.
func split(zone string) (url.Values, error) {
	sld, tld, ok := strings.Cut(normalize(zone), ".")
	if !ok {
		return nil, fmt.Errorf("%q is not a registered domain", zone)
	}
	return url.Values{"SLD": {sld}, "TLD": {tld}}, nil
}

// NameServers implements dns.NameServerReporter.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	q, err := split(zone)
	if err != nil {
		return nil, err
	}
	var out struct {
		NS []string `xml:"DomainDNSGetListResult>Nameserver"`
	}
	if err := p.call(ctx, "namecheap.domains.dns.getList", q, &out); err != nil {
		return nil, fmt.Errorf("reading name servers of %s: %w", zone, err)
	}
	return out.NS, nil
}

// host is one host record as getHosts returns it.
type host struct {
	Name    string `xml:"Name,attr"`
	Type    string `xml:"Type,attr"`
	Address string `xml:"Address,attr"`
	MXPref  string `xml:"MXPref,attr"`
	TTL     string `xml:"TTL,attr"`
}

// hosts is a getHosts result; the element is <host> in answers and
// <Host> in some documentation, so both are read.
type hosts struct {
	EmailType string `xml:"EmailType,attr"`
	Elems     []struct {
		XMLName xml.Name
		host
	} `xml:",any"`
}

func relative(zone, fqdn string) string {
	zone, name := normalize(zone), normalize(fqdn)
	if name == zone {
		return "@"
	}
	return strings.TrimSuffix(name, "."+zone)
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	return p.change(ctx, zone, fqdn, func(cur []string) []string {
		for _, v := range values {
			if !slices.Contains(cur, v) {
				cur = append(cur, v)
			}
		}
		return cur
	})
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	return p.change(ctx, zone, fqdn, func(cur []string) []string {
		return slices.DeleteFunc(cur, func(v string) bool { return slices.Contains(values, v) })
	})
}

func (p *Provider) change(ctx context.Context, zone, fqdn string, edit func([]string) []string) error {
	q, err := split(zone)
	if err != nil {
		return err
	}
	name := relative(zone, fqdn)
	p.mu.Lock()
	defer p.mu.Unlock()
	var res struct {
		Result hosts `xml:"DomainDNSGetHostsResult"`
	}
	if err := p.call(ctx, "namecheap.domains.dns.getHosts", q, &res); err != nil {
		return fmt.Errorf("reading hosts of %s: %w", zone, err)
	}
	var others []host
	var cur []string
	for _, e := range res.Result.Elems {
		if !strings.EqualFold(e.XMLName.Local, "host") {
			continue
		}
		if e.Type == "TXT" && strings.EqualFold(e.Name, name) {
			cur = append(cur, e.Address)
		} else {
			others = append(others, e.host)
		}
	}
	before := slices.Clone(cur)
	next := edit(cur)
	if slices.Equal(before, next) {
		return nil
	}
	for _, v := range next {
		others = append(others, host{Name: name, Type: "TXT", Address: v, TTL: strconv.Itoa(p.ttl)})
	}
	for i, h := range others {
		n := strconv.Itoa(i + 1)
		q.Set("HostName"+n, h.Name)
		q.Set("RecordType"+n, h.Type)
		q.Set("Address"+n, h.Address)
		q.Set("TTL"+n, h.TTL)
		if h.Type == "MX" {
			q.Set("MXPref"+n, h.MXPref)
		}
	}
	if res.Result.EmailType != "" {
		q.Set("EmailType", res.Result.EmailType)
	}
	var set struct {
		Result struct {
			IsSuccess bool `xml:"IsSuccess,attr"`
		} `xml:"DomainDNSSetHostsResult"`
	}
	if err := p.call(ctx, "namecheap.domains.dns.setHosts", q, &set); err != nil {
		return fmt.Errorf("writing hosts of %s: %w", zone, err)
	}
	if !set.Result.IsSuccess {
		return fmt.Errorf("writing hosts of %s: IsSuccess is not true", zone)
	}
	return nil
}
