package rfc2136

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

func newBINDProvider(t *testing.T, b *testenv.BIND) *Provider {
	t.Helper()
	p, err := New(Config{
		Nameserver:    b.Addr,
		TSIGKeyName:   b.TSIGKeyName,
		TSIGAlgorithm: b.TSIGAlgorithm,
		TSIGSecret:    secret.String(b.TSIGSecret),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProviderBIND(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{})
	p := newBINDProvider(t, b)
	ctx := t.Context()
	const fqdn = "_acme-challenge.www.example.test."

	txt := func(t *testing.T, want []string) {
		t.Helper()
		got, err := b.TXT(ctx, fqdn)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("TXT %s (-want +got):\n%s", fqdn, diff)
		}
	}

	if err := p.Present(ctx, "example.test", fqdn, []string{"value-a", "value-b"}); err != nil {
		t.Fatalf("Present: %v", err)
	}
	txt(t, []string{"value-a", "value-b"})

	// Presenting again, with one value already there, keeps both.
	if err := p.Present(ctx, "example.test.", fqdn, []string{"value-b", "value-c"}); err != nil {
		t.Fatalf("Present: %v", err)
	}
	txt(t, []string{"value-a", "value-b", "value-c"})

	if err := p.CleanUp(ctx, "example.test", fqdn, []string{"value-a", "value-c"}); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	txt(t, []string{"value-b"})

	if err := p.CleanUp(ctx, "example.test", fqdn, []string{"value-b"}); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	txt(t, []string{})

	// Removing what is not there is not an error.
	if err := p.CleanUp(ctx, "example.test", fqdn, []string{"value-b"}); err != nil {
		t.Fatalf("CleanUp again: %v", err)
	}
	names, err := b.ChallengeRecords(ctx, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("challenge records left: %v", names)
	}
}

func TestProviderBINDLongValue(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{})
	p := newBINDProvider(t, b)
	ctx := t.Context()
	const fqdn = "_acme-challenge.example.test."
	long := strings.Repeat("x", 300)
	if err := p.Present(ctx, "example.test", fqdn, []string{long}); err != nil {
		t.Fatal(err)
	}
	got, err := b.TXT(ctx, fqdn)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{long}, got); diff != "" {
		t.Errorf("TXT (-want +got):\n%s", diff)
	}
	if err := p.CleanUp(ctx, "example.test", fqdn, []string{long}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.TXT(ctx, fqdn); len(got) != 0 {
		t.Errorf("TXT after CleanUp = %v", got)
	}
}

func TestProviderBINDRefused(t *testing.T) {
	t.Parallel()
	b := testenv.StartBIND(t, testenv.BINDOptions{})
	wrongSecret := "c2VjcmV0LXRoYXQtYmluZC1kb2VzLW5vdC1rbm93LTEyMzQ="

	tests := []struct {
		name      string
		cfg       Config
		zone      string
		fqdn      string
		wantParts []string
	}{
		{
			name:      "wrong TSIG secret",
			cfg:       Config{Nameserver: b.Addr, TSIGKeyName: b.TSIGKeyName, TSIGSecret: secret.String(wrongSecret)},
			zone:      "example.test",
			fqdn:      "_acme-challenge.example.test.",
			wantParts: []string{"updating TXT _acme-challenge.example.test. at " + b.Addr, "NOTAUTH", "BADSIG"},
		},
		{
			name:      "unknown TSIG key",
			cfg:       Config{Nameserver: b.Addr, TSIGKeyName: "nobody", TSIGSecret: secret.String(wrongSecret)},
			zone:      "example.test",
			fqdn:      "_acme-challenge.example.test.",
			wantParts: []string{"at " + b.Addr, "NOTAUTH", "BADKEY"},
		},
		{
			name:      "unsigned",
			cfg:       Config{Nameserver: b.Addr},
			zone:      "example.test",
			fqdn:      "_acme-challenge.example.test.",
			wantParts: []string{"at " + b.Addr, "server answered REFUSED"},
		},
		{
			name:      "name outside the zone",
			cfg:       Config{Nameserver: b.Addr, TSIGKeyName: b.TSIGKeyName, TSIGSecret: secret.String(b.TSIGSecret)},
			zone:      "example.test",
			fqdn:      "_acme-challenge.elsewhere.invalid.",
			wantParts: []string{"updating TXT _acme-challenge.elsewhere.invalid. at " + b.Addr, "server answered NOTZONE"},
		},
		{
			name:      "zone the server does not serve",
			cfg:       Config{Nameserver: b.Addr, TSIGKeyName: b.TSIGKeyName, TSIGSecret: secret.String(b.TSIGSecret)},
			zone:      "elsewhere.invalid",
			fqdn:      "_acme-challenge.elsewhere.invalid.",
			wantParts: []string{"at " + b.Addr, "server answered NOTAUTH"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Present(t.Context(), tt.zone, tt.fqdn, []string{"v"})
			if err == nil {
				t.Fatal("Present succeeded, want an error")
			}
			t.Logf("error: %v", err)
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
			if strings.Contains(err.Error(), wrongSecret) || strings.Contains(err.Error(), b.TSIGSecret) {
				t.Errorf("error %q contains the TSIG secret", err)
			}
		})
	}
	if got, err := b.TXT(t.Context(), "_acme-challenge.example.test."); err != nil || len(got) != 0 {
		t.Errorf("TXT after refused updates = %v, %v; want none", got, err)
	}
}

func TestProviderTimeout(t *testing.T) {
	t.Parallel()
	// A UDP socket that never answers.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	p, err := New(Config{Nameserver: pc.LocalAddr().String(), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Present(t.Context(), "example.test", "_acme-challenge.example.test.", []string{"v"})
	if err == nil {
		t.Fatal("Present succeeded against a silent server")
	}
	want := "updating TXT _acme-challenge.example.test. at " + pc.LocalAddr().String()
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestProviderTCPFallback(t *testing.T) {
	t.Parallel()
	// A server that answers every UDP update truncated and accepts it over
	// TCP.
	pc, l := listenUDPAndTCP(t)
	var udp, tcp atomic.Int32
	handler := func(network string, n *atomic.Int32) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			n.Add(1)
			m := new(dns.Msg)
			m.SetReply(r)
			m.Truncated = network == "udp"
			w.WriteMsg(m)
		}
	}
	acceptAll := func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept }
	udpServer := &dns.Server{PacketConn: pc, Handler: handler("udp", &udp), MsgAcceptFunc: acceptAll}
	tcpServer := &dns.Server{Listener: l, Handler: handler("tcp", &tcp), MsgAcceptFunc: acceptAll}
	go udpServer.ActivateAndServe()
	go tcpServer.ActivateAndServe()
	t.Cleanup(func() {
		udpServer.Shutdown()
		tcpServer.Shutdown()
	})

	p, err := New(Config{Nameserver: pc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Present(t.Context(), "example.test", "_acme-challenge.example.test.", []string{"v"}); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if udp.Load() != 1 || tcp.Load() != 1 {
		t.Errorf("updates over UDP, TCP = %d, %d; want 1, 1", udp.Load(), tcp.Load())
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	const b64 = "c2VjcmV0"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		wantNS  string
		wantAlg string
	}{
		{name: "defaults", cfg: Config{Nameserver: "ns.example.test", TSIGKeyName: "k", TSIGSecret: b64}, wantNS: "ns.example.test:53", wantAlg: dns.HmacSHA256},
		{name: "port kept", cfg: Config{Nameserver: "127.0.0.1:8053"}, wantNS: "127.0.0.1:8053"},
		{name: "ipv6 without port", cfg: Config{Nameserver: "::1"}, wantNS: "[::1]:53"},
		{name: "sha512 upper case", cfg: Config{Nameserver: "ns:53", TSIGKeyName: "k", TSIGAlgorithm: "HMAC-SHA512", TSIGSecret: b64}, wantNS: "ns:53", wantAlg: dns.HmacSHA512},
		{name: "sha1 with dot", cfg: Config{Nameserver: "ns:53", TSIGKeyName: "k", TSIGAlgorithm: "hmac-sha1.", TSIGSecret: b64}, wantNS: "ns:53", wantAlg: dns.HmacSHA1},
		{name: "sha224", cfg: Config{Nameserver: "ns:53", TSIGKeyName: "k", TSIGAlgorithm: "hmac-sha224", TSIGSecret: b64}, wantNS: "ns:53", wantAlg: dns.HmacSHA224},
		{name: "sha384", cfg: Config{Nameserver: "ns:53", TSIGKeyName: "k", TSIGAlgorithm: "hmac-sha384", TSIGSecret: b64}, wantNS: "ns:53", wantAlg: dns.HmacSHA384},
		{name: "md5 rejected", cfg: Config{Nameserver: "ns:53", TSIGKeyName: "k", TSIGAlgorithm: "hmac-md5", TSIGSecret: b64}, wantErr: `tsigAlgorithm "hmac-md5"`},
		{name: "no nameserver", cfg: Config{}, wantErr: "nameserver is required"},
		{name: "secret without key", cfg: Config{Nameserver: "ns", TSIGSecret: b64}, wantErr: "tsigKeyName is required"},
		{name: "key without secret", cfg: Config{Nameserver: "ns", TSIGKeyName: "k"}, wantErr: "tsigSecret is required"},
		{name: "bad base64", cfg: Config{Nameserver: "ns", TSIGKeyName: "k", TSIGSecret: "not base64!"}, wantErr: "tsigSecret is not valid base64"},
		{name: "negative ttl", cfg: Config{Nameserver: "ns", TTL: -1}, wantErr: "ttl -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "not base64!") {
					t.Errorf("error %q contains the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if p.nameserver != tt.wantNS || p.algorithm != tt.wantAlg {
				t.Errorf("nameserver, algorithm = %q, %q; want %q, %q", p.nameserver, p.algorithm, tt.wantNS, tt.wantAlg)
			}
		})
	}
}

// listenUDPAndTCP listens on one loopback port for both UDP and TCP.
func listenUDPAndTCP(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}
