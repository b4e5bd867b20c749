// Package rfc2136 holds a DNS provider that writes TXT records with dynamic
// updates (RFC 2136) signed with TSIG (RFC 8945), as BIND, Knot, PowerDNS
// and Windows DNS accept them.
package rfc2136

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	certdns "github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Defaults for Config fields left zero.
const (
	DefaultTTL           = 60
	DefaultTimeout       = 10 * time.Second
	DefaultTSIGAlgorithm = "hmac-sha256"
)

// Config is what a Provider needs.
type Config struct {
	// Nameserver is host:port (port 53 when absent) of the primary server
	// that takes updates.
	Nameserver string
	// TSIGKeyName, TSIGAlgorithm and TSIGSecret sign the updates.
	// TSIGAlgorithm is written as tsig-keygen writes it (hmac-sha256, the
	// default; hmac-sha1, hmac-sha224, hmac-sha384, hmac-sha512) and
	// TSIGSecret is base64. With no key name and no secret, updates are sent
	// unsigned (for servers that allow updates by address).
	TSIGKeyName   string
	TSIGAlgorithm string
	TSIGSecret    secret.String
	// TTL of the records written; default 60.
	TTL int
	// Timeout bounds one update exchange; default 10s.
	Timeout time.Duration
}

// Provider sends dynamic updates to one server. It is safe for concurrent
// use.
type Provider struct {
	nameserver string
	keyName    string // fully qualified, lowercase; empty for unsigned
	algorithm  string // miekg/dns algorithm name, fully qualified
	secret     secret.String
	ttl        uint32
	timeout    time.Duration
}

var _ certdns.Provider = (*Provider)(nil)

// New checks cfg and returns a Provider. It does not contact the server.
func New(cfg Config) (*Provider, error) {
	var errs []error
	p := &Provider{ttl: DefaultTTL, timeout: DefaultTimeout, secret: cfg.TSIGSecret}
	if cfg.TTL > 0 {
		p.ttl = uint32(cfg.TTL)
	} else if cfg.TTL < 0 {
		errs = append(errs, fmt.Errorf("ttl %d is negative", cfg.TTL))
	}
	if cfg.Timeout > 0 {
		p.timeout = cfg.Timeout
	}
	switch ns := strings.TrimSpace(cfg.Nameserver); {
	case ns == "":
		errs = append(errs, errors.New("nameserver is required"))
	default:
		if _, _, err := net.SplitHostPort(ns); err != nil {
			ns = net.JoinHostPort(strings.Trim(ns, "[]"), "53")
		}
		p.nameserver = ns
	}
	switch {
	case cfg.TSIGKeyName == "" && cfg.TSIGSecret == "":
		// Unsigned updates.
	case cfg.TSIGKeyName == "":
		errs = append(errs, errors.New("tsigKeyName is required with tsigSecret"))
	case cfg.TSIGSecret == "":
		errs = append(errs, errors.New("tsigSecret is required with tsigKeyName"))
	default:
		p.keyName = dns.CanonicalName(cfg.TSIGKeyName)
		if _, ok := dns.IsDomainName(p.keyName); !ok {
			errs = append(errs, fmt.Errorf("tsigKeyName %q is not a domain name", cfg.TSIGKeyName))
		}
		alg, err := algorithm(cfg.TSIGAlgorithm)
		if err != nil {
			errs = append(errs, err)
		}
		p.algorithm = alg
		if _, err := base64.StdEncoding.DecodeString(cfg.TSIGSecret.Reveal()); err != nil {
			errs = append(errs, errors.New("tsigSecret is not valid base64"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring RFC 2136 provider: %w", err)
	}
	return p, nil
}

// algorithm maps a TSIG algorithm name, as tsig-keygen and named.conf write
// it, to miekg/dns's name.
func algorithm(name string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if n == "" {
		n = DefaultTSIGAlgorithm
	}
	switch n {
	case "hmac-sha1":
		return dns.HmacSHA1, nil
	case "hmac-sha224":
		return dns.HmacSHA224, nil
	case "hmac-sha256":
		return dns.HmacSHA256, nil
	case "hmac-sha384":
		return dns.HmacSHA384, nil
	case "hmac-sha512":
		return dns.HmacSHA512, nil
	}
	return "", fmt.Errorf("tsigAlgorithm %q is not one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512", name)
}

// Present adds every one of values to the TXT RRset at fqdn in one update
// (RFC 2136 section 2.5.1). Values already there stay.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	rrs, err := p.records(fqdn, values)
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	m.Insert(rrs)
	return p.update(ctx, m, fqdn)
}

// CleanUp removes exactly values from the TXT RRset at fqdn in one update
// (RFC 2136 section 2.5.4). Values that are not there are not an error.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	rrs, err := p.records(fqdn, values)
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	m.Remove(rrs)
	return p.update(ctx, m, fqdn)
}

func (p *Provider) records(fqdn string, values []string) ([]dns.RR, error) {
	name := dns.Fqdn(fqdn)
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("updating TXT %s: not a domain name", fqdn)
	}
	rrs := make([]dns.RR, 0, len(values))
	for _, v := range values {
		rrs = append(rrs, &dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: p.ttl},
			Txt: splitTXT(v),
		})
	}
	return rrs, nil
}

// splitTXT cuts v into character-strings of at most 255 bytes (RFC 1035
// section 3.3.14).
func splitTXT(v string) []string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, v[:255])
		v = v[255:]
	}
	return append(parts, v)
}

// update signs and sends m, over UDP and again over TCP when the answer is
// truncated, and turns any rcode but NOERROR into an error.
func (p *Provider) update(ctx context.Context, m *dns.Msg, fqdn string) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	r, err := p.exchange(ctx, m, "udp")
	if err == nil && r.Truncated {
		r, err = p.exchange(ctx, m, "tcp")
	}
	if r != nil && r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("updating TXT %s at %s: server answered %s", fqdn, p.nameserver, rcodeText(r))
	}
	if err != nil {
		return fmt.Errorf("updating TXT %s at %s: %w", fqdn, p.nameserver, err)
	}
	return nil
}

func rcodeText(r *dns.Msg) string {
	s := dns.RcodeToString[r.Rcode]
	if s == "" {
		s = fmt.Sprintf("rcode %d", r.Rcode)
	}
	if t := r.IsTsig(); t != nil && t.Error != dns.RcodeSuccess {
		e := dns.RcodeToString[int(t.Error)]
		if e == "" {
			e = fmt.Sprintf("%d", t.Error)
		}
		s += " (TSIG error " + e + ")"
	}
	return s
}

// exchange sends m once over network; the connection is closed when ctx
// ends so that a cancelled update returns at once.
func (p *Provider) exchange(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: p.timeout}
	if p.keyName != "" {
		c.TsigSecret = map[string]string{p.keyName: p.secret.Reveal()}
		if m.IsTsig() == nil {
			m.SetTsig(p.keyName, p.algorithm, 300, time.Now().Unix())
		}
	}
	conn, err := c.DialContext(ctx, p.nameserver)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return r, err
}
