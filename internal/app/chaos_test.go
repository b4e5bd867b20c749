package app_test

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestDNSFaults checks that DNS faults end the operation failed, naming the
// step and the server, with no record left: records that never reach the
// resolver certkeeper checks (a second server that never gets them), and
// an update server that never answers. (An update server that refuses, by
// a wrong TSIG key, is TestFailuresNameTheStep.)
func TestDNSFaults(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	t.Run("records never propagate", func(t *testing.T) {
		t.Parallel()
		// A second server for the zone that never receives the updates.
		stale := testenv.StartBIND(t, testenv.BINDOptions{Zones: []string{"example.test"}})
		cfg := d.config(t, "sqlite")
		cfg.DNS.Resolvers = []string{stale.Addr}
		cfg.DNS.PropagationTimeout = 5 * time.Second
		cfg.DNS.Providers[0].PropagationTimeout = 5 * time.Second
		base := service(t, cfg)
		status, body := issueAndWait(t, base, `{"dnsNames":["stale.example.test"]}`)
		if status != http.StatusInternalServerError || !strings.Contains(body, "propagat") || !strings.Contains(body, stale.Addr) {
			t.Errorf("state = %d %s; want 500 naming the propagation step and %s", status, body, stale.Addr)
		}
		t.Logf("FIGURE never propagates: %d %s", status, body)
		assertNoRecords(t, d.bind, "stale.example.test")
	})
	t.Run("update server never answers", func(t *testing.T) {
		t.Parallel()
		// A UDP and TCP socket that take requests and never answer.
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { udp.Close() })
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tcp.Close() })
		go func() {
			for {
				c, err := tcp.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		cfg := d.config(t, "sqlite")
		cfg.DNS.Providers[0].RFC2136.Nameserver = udp.LocalAddr().String()
		base := service(t, cfg)
		status, body := issueAndWait(t, base, `{"dnsNames":["silent.example.test"]}`)
		if status != http.StatusInternalServerError || !strings.Contains(body, "presenting DNS records") ||
			!strings.Contains(body, udp.LocalAddr().String()) {
			t.Errorf("state = %d %s; want 500 naming the presenting step and the silent server", status, body)
		}
		t.Logf("FIGURE silent update server: %d %s", status, body)
		assertNoRecords(t, d.bind, "silent.example.test")
	})
}

// TestDNSServerFailure checks that an update server answering SERVFAIL to
// everything ends the operation failed at presenting, naming the server.
func TestDNSServerFailure(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, MsgAcceptFunc: func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	cfg := d.config(t, "sqlite")
	cfg.DNS.Providers[0].RFC2136.Nameserver = pc.LocalAddr().String()
	base := service(t, cfg)
	status, body := issueAndWait(t, base, `{"dnsNames":["servfail.example.test"]}`)
	t.Logf("FIGURE SERVFAIL update server: %d %s", status, body)
	if status != http.StatusInternalServerError || !strings.Contains(body, "presenting DNS records") ||
		!strings.Contains(body, pc.LocalAddr().String()) {
		t.Errorf("state = %d %s; want 500 naming the presenting step and the server", status, body)
	}
	assertNoRecords(t, d.bind, "servfail.example.test")
}

// TestCAFaults checks that a CA answering 5xx to everything, or never
// answering, ends the operation failed at the ordering step with the CA's
// answer or the timeout as the reason.
func TestCAFaults(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	for _, tt := range []struct {
		name, want string
		handler    http.HandlerFunc
	}{
		{"5xx", "HTTP 503", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
		}},
		{"timeout", "unreachable", func(w http.ResponseWriter, r *http.Request) {
			select { // longer than the CA client's 30 s timeout
			case <-r.Context().Done():
			case <-time.After(2 * time.Minute):
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ca := httptest.NewTLSServer(tt.handler)
			t.Cleanup(ca.Close)
			bundle := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate().Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := d.config(t, "sqlite")
			cfg.ACME.Endpoint = ca.URL + "/dir"
			cfg.ACME.CABundle = bundle
			cfg.ACME.Profile = ""
			base := service(t, cfg)
			status, body := issueAndWait(t, base, `{"dnsNames":["ca-`+tt.name+`.example.test"]}`)
			t.Logf("FIGURE CA %s: %d %s", tt.name, status, body)
			if status != http.StatusInternalServerError || !strings.Contains(body, "ordering") || !strings.Contains(body, tt.want) {
				t.Errorf("state = %d %s; want 500 naming the ordering step and %q", status, body, tt.want)
			}
		})
	}
}
