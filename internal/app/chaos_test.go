package app_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
