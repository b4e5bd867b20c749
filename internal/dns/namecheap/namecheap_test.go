package namecheap_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/namecheap"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const (
	apiUser  = "ncuser"
	apiKey   = "nc-key-0123456789abcdef"
	clientIP = "192.0.2.7"
)

var indexed = regexp.MustCompile(`^(?:HostName|RecordType|Address|MXPref|TTL)(\d+)$`)

type host struct {
	Name, Type, Address, MXPref, TTL string
}

// fakeNamecheap answers like Namecheap's XML API: HTTP 200 with an
// ApiResponse whose Status says OK or ERROR.
type fakeNamecheap struct {
	t         *testing.T
	mu        sync.Mutex
	domains   []string
	hosts     map[string][]host
	emailType map[string]string
	sets      int
}

func (f *fakeNamecheap) reply(w http.ResponseWriter, command, inner string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>
<ApiResponse Status="OK" xmlns="http://api.namecheap.com/xml.response"><Errors /><Warnings /><RequestedCommand>%s</RequestedCommand>
<CommandResponse Type="%s">%s</CommandResponse><Server>PHX01APIEXT01</Server><GMTTimeDifference>--5:00</GMTTimeDifference><ExecutionTime>0.05</ExecutionTime></ApiResponse>`,
		command, command, inner)
}

func (f *fakeNamecheap) fail(w http.ResponseWriter, command, number, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>
<ApiResponse Status="ERROR" xmlns="http://api.namecheap.com/xml.response"><Errors><Error Number="%s">%s</Error></Errors><Warnings /><RequestedCommand>%s</RequestedCommand><Server>PHX01APIEXT01</Server><GMTTimeDifference>--5:00</GMTTimeDifference><ExecutionTime>0.01</ExecutionTime></ApiResponse>`,
		number, msg, command)
}

func attr(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), `"`, "&#34;")
}

func (f *fakeNamecheap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/xml.response" || r.URL.RawQuery != "" {
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
	}
	dnstest.WantHeader(f.t, r, "Content-Type", "application/x-www-form-urlencoded")
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("form: %v", err)
	}
	q := r.PostForm
	cmd := q.Get("Command")
	switch {
	case q.Get("ApiUser") != apiUser || q.Get("ApiKey") != apiKey:
		f.fail(w, cmd, "1011102", "API Key is invalid or API access has not been enabled")
		return
	case q.Get("ClientIp") != clientIP:
		f.fail(w, cmd, "1011150", "Parameter RequestIP is invalid")
		return
	case q.Get("UserName") != apiUser:
		f.t.Errorf("UserName = %q", q.Get("UserName"))
	}
	if cmd == "namecheap.domains.getList" {
		page, _ := strconv.Atoi(q.Get("Page"))
		size, _ := strconv.Atoi(q.Get("PageSize"))
		if page < 1 || size < 10 || size > 100 {
			f.t.Errorf("getList Page=%q PageSize=%q", q.Get("Page"), q.Get("PageSize"))
		}
		var b strings.Builder
		b.WriteString("<DomainGetListResult>")
		for i, d := range f.domains {
			if i >= (page-1)*size && i < page*size {
				fmt.Fprintf(&b, `<Domain ID="%d" Name="%s" User="%s" Created="01/01/2020" Expires="01/01/2030" IsExpired="false" IsLocked="false" AutoRenew="false" WhoisGuard="ENABLED" IsPremium="false" IsOurDNS="true"/>`, i+1, d, apiUser)
			}
		}
		fmt.Fprintf(&b, "</DomainGetListResult><Paging><TotalItems>%d</TotalItems><CurrentPage>%d</CurrentPage><PageSize>%d</PageSize></Paging>", len(f.domains), page, size)
		f.reply(w, cmd, b.String())
		return
	}
	domain := q.Get("SLD") + "." + q.Get("TLD")
	if _, ok := f.hosts[domain]; !ok {
		f.fail(w, cmd, "2019166", "Domain not found")
		return
	}
	switch cmd {
	case "namecheap.domains.dns.getList":
		f.reply(w, cmd, `<DomainDNSGetListResult Domain="`+domain+`" IsUsingOurDNS="true" IsPremiumDNS="false" IsUsingFreeDNS="false"><Nameserver>dns1.registrar-servers.com</Nameserver><Nameserver>dns2.registrar-servers.com</Nameserver></DomainDNSGetListResult>`)
	case "namecheap.domains.dns.getHosts":
		var b strings.Builder
		fmt.Fprintf(&b, `<DomainDNSGetHostsResult Domain="%s" EmailType="%s" IsUsingOurDNS="true">`, domain, f.emailType[domain])
		for i, h := range f.hosts[domain] {
			fmt.Fprintf(&b, `<host HostId="%d" Name="%s" Type="%s" Address="%s" MXPref="%s" TTL="%s" AssociatedAppTitle="" FriendlyName="" IsActive="true" IsDDNSEnabled="false" />`,
				i+100, attr(h.Name), h.Type, attr(h.Address), h.MXPref, h.TTL)
		}
		b.WriteString("</DomainDNSGetHostsResult>")
		f.reply(w, cmd, b.String())
	case "namecheap.domains.dns.setHosts":
		var hs []host
		for i := 1; q.Has("HostName" + strconv.Itoa(i)); i++ {
			n := strconv.Itoa(i)
			h := host{Name: q.Get("HostName" + n), Type: q.Get("RecordType" + n), Address: q.Get("Address" + n), MXPref: q.Get("MXPref" + n), TTL: q.Get("TTL" + n)}
			ttl, err := strconv.Atoi(h.TTL)
			if h.Name == "" || h.Type == "" || h.Address == "" || err != nil || ttl < 60 || ttl > 60000 {
				f.fail(w, cmd, "2050900", "Invalid host record "+n)
				return
			}
			if h.Type == "MX" && h.MXPref == "" {
				f.fail(w, cmd, "2050900", "MXPref is required for MX record "+n)
				return
			}
			if h.Type != "MX" {
				h.MXPref = "10" // what getHosts shows for records without one
			}
			hs = append(hs, h)
		}
		for k := range q {
			if m := indexed.FindStringSubmatch(k); m != nil {
				if i, _ := strconv.Atoi(m[1]); i > len(hs) {
					f.t.Errorf("setHosts: %s beyond the %d hosts", k, len(hs))
				}
			}
		}
		if q.Get("EmailType") != f.emailType[domain] {
			f.t.Errorf("setHosts EmailType = %q, want %q", q.Get("EmailType"), f.emailType[domain])
		}
		f.hosts[domain] = hs
		f.sets++
		f.reply(w, cmd, `<DomainDNSSetHostsResult Domain="`+domain+`" IsSuccess="true"><Warnings /></DomainDNSSetHostsResult>`)
	default:
		f.t.Errorf("unexpected command %q", cmd)
		f.fail(w, cmd, "1010900", "Invalid Command")
	}
}

func (f *fakeNamecheap) txt(domain, name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, h := range f.hosts[domain] {
		if h.Type == "TXT" && h.Name == name {
			out = append(out, h.Address)
		}
	}
	return out
}

func TestNamecheap(t *testing.T) {
	t.Parallel()
	others := []host{
		{Name: "@", Type: "A", Address: "192.0.2.1", MXPref: "10", TTL: "1800"},
		{Name: "@", Type: "MX", Address: "mx1.example.net.", MXPref: "5", TTL: "1800"},
		{Name: "@", Type: "TXT", Address: `v=spf1 include:"x" -all`, MXPref: "10", TTL: "1799"},
		{Name: "_acme-challenge.www", Type: "CNAME", Address: "elsewhere.example.net.", MXPref: "10", TTL: "300"},
	}
	f := &fakeNamecheap{t: t, hosts: map[string][]host{"example.co.uk": append([]host(nil), others...)},
		emailType: map[string]string{"example.co.uk": "MX"}}
	for i := range 234 {
		f.domains = append(f.domains, fmt.Sprintf("d%03d.example", i))
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	newProvider := func(key, ip string) *namecheap.Provider {
		p, err := namecheap.New(namecheap.Config{APIUser: apiUser, APIKey: secret.String(key), ClientIP: ip, Endpoint: srv.URL, TTL: 30})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(apiKey, clientIP)
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.co.uk.", "_acme-challenge.WWW.example.co.uk.", func() []string { return f.txt("example.co.uk", "_acme-challenge.www") })
		f.mu.Lock()
		defer f.mu.Unlock()
		if diff := cmp.Diff(others, f.hosts["example.co.uk"]); diff != "" {
			t.Errorf("other hosts after the scenario (-want +got):\n%s", diff)
		}
		if f.sets != 4 {
			t.Errorf("%d setHosts, want 4 (no write when nothing changes)", f.sets)
		}
	})
	t.Run("domains and name servers", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil || !cmp.Equal(zones, f.domains) {
			t.Errorf("Zones = %d, %v; want %d", len(zones), err, len(f.domains))
		}
		ns, err := p.NameServers(t.Context(), "example.co.uk")
		if err != nil || !cmp.Equal(ns, []string{"dns1.registrar-servers.com", "dns2.registrar-servers.com"}) {
			t.Errorf("NameServers = %v, %v", ns, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := newProvider("wrong-key", clientIP).Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "API Key is invalid or API access has not been enabled (1011102)") || strings.Contains(err.Error(), "wrong-key") {
			t.Errorf("wrong key: %v", err)
		}
		_, err = newProvider(apiKey, "198.51.100.1").Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "Parameter RequestIP is invalid (1011150)") {
			t.Errorf("wrong client IP: %v", err)
		}
		err = p.Present(t.Context(), "unknown.example", "_acme-challenge.unknown.example.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "namecheap.domains.dns.getHosts: Domain not found (2019166)") {
			t.Errorf("unknown domain: %v", err)
		}
	})
}
