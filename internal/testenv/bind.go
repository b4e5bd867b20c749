package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// bindBinary is where Debian's bind9 package installs named.
const bindBinary = "/usr/sbin/named"

// BINDOptions configures a BIND9 server started by StartBIND.
type BINDOptions struct {
	// Zones are the primary zones served; default ["example.test"]. Each has
	// an SOA, an NS ns.<zone>. and ns.<zone>. A 127.0.0.1.
	Zones []string
	// ExtraRecords are zone-file lines. A line whose owner is absolute (ends
	// with a dot) goes into the zone that contains it; any other line into
	// the first zone.
	ExtraRecords []string
}

// BIND is a running BIND9 authoritative server on loopback that accepts
// TSIG-signed dynamic updates of TXT records (RFC 2136) in its zones. Its
// methods are safe for concurrent use.
type BIND struct {
	// Addr is the 127.0.0.1:port the server answers on, UDP and TCP.
	Addr string
	// TSIGKeyName, TSIGAlgorithm and TSIGSecret are the key allowed to
	// update TXT records (algorithm as tsig-keygen writes it, secret base64).
	TSIGKeyName   string
	TSIGAlgorithm string
	TSIGSecret    string

	dir      string
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// StartBIND starts named on a free loopback port with opts and waits until
// it answers the SOA of every zone. The server is stopped in t.Cleanup. When
// the test runs as root, named drops to the user bind.
func StartBIND(t testing.TB, opts BINDOptions) *BIND {
	t.Helper()
	if _, err := os.Stat(bindBinary); err != nil {
		t.Fatalf("BIND9 is not installed (%s): %v; install bind9 and bind9-dnsutils", bindBinary, err)
	}
	if len(opts.Zones) == 0 {
		opts.Zones = []string{"example.test"}
	}
	var lastErr error
	// A port found free can be taken by another test before named binds
	// it; try a few ports.
	for range 3 {
		b, err := startBIND(opts)
		if err == nil {
			t.Cleanup(b.Stop)
			return b
		}
		lastErr = err
	}
	t.Fatalf("starting BIND: %v", lastErr)
	return nil
}

func startBIND(opts BINDOptions) (*BIND, error) {
	port, err := bindFreePort()
	if err != nil {
		return nil, err
	}
	secretRaw := make([]byte, 32)
	if _, err := rand.Read(secretRaw); err != nil {
		return nil, fmt.Errorf("generating TSIG secret: %w", err)
	}
	b := &BIND{
		Addr:          net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		TSIGKeyName:   "certkeeper-test-key",
		TSIGAlgorithm: "hmac-sha256",
		TSIGSecret:    base64.StdEncoding.EncodeToString(secretRaw),
		exited:        make(chan struct{}),
	}
	// Not t.TempDir: its parent is private to root and named runs as bind.
	b.dir, err = os.MkdirTemp("", "certkeeper-bind-")
	if err != nil {
		return nil, fmt.Errorf("creating BIND directory: %w", err)
	}
	fail := func(err error) (*BIND, error) {
		os.RemoveAll(b.dir)
		return nil, err
	}
	if err := b.writeConfig(port, opts); err != nil {
		return fail(err)
	}
	args := []string{"-c", filepath.Join(b.dir, "named.conf"), "-g", "-4", "-n", "1"}
	if os.Geteuid() == 0 {
		if err := bindChown(b.dir); err != nil {
			return fail(err)
		}
		args = append(args, "-u", "bind")
	}
	logPath := filepath.Join(b.dir, "named.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fail(fmt.Errorf("creating BIND log: %w", err))
	}
	b.cmd = exec.Command(bindBinary, args...)
	b.cmd.Stdout = logFile
	b.cmd.Stderr = logFile
	if err := b.cmd.Start(); err != nil {
		logFile.Close()
		return fail(fmt.Errorf("starting named: %w", err))
	}
	go func() {
		b.cmd.Wait()
		logFile.Close()
		close(b.exited)
	}()
	if err := b.waitReady(opts.Zones); err != nil {
		b.kill()
		out, _ := os.ReadFile(logPath)
		os.RemoveAll(b.dir)
		return nil, fmt.Errorf("%w\nnamed output:\n%s", err, out)
	}
	return b, nil
}

func (b *BIND) writeConfig(port int, opts BINDOptions) error {
	var conf strings.Builder
	fmt.Fprintf(&conf, `options {
	directory %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	pid-file %q;
	session-keyfile %q;
	managed-keys-directory %q;
	allow-transfer { key %q; 127.0.0.1; };
};
controls { };
key %q {
	algorithm %s;
	secret %q;
};
`, b.dir, port, filepath.Join(b.dir, "named.pid"), filepath.Join(b.dir, "session.key"), b.dir,
		b.TSIGKeyName, b.TSIGKeyName, b.TSIGAlgorithm, b.TSIGSecret)

	extra := make(map[string][]string)
	for _, line := range opts.ExtraRecords {
		zone := opts.Zones[0]
		if owner, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.HasSuffix(owner, ".") {
			zone = bindZoneOf(strings.TrimSuffix(strings.ToLower(owner), "."), opts.Zones, zone)
		}
		extra[zone] = append(extra[zone], line)
	}
	for _, zone := range opts.Zones {
		file := filepath.Join(b.dir, zone+".db")
		fmt.Fprintf(&conf, "zone %q {\n\ttype primary;\n\tfile %q;\n\tupdate-policy { grant %q zonesub TXT; };\n};\n",
			zone, file, b.TSIGKeyName)
		var db strings.Builder
		fmt.Fprintf(&db, "$ORIGIN %s.\n$TTL 60\n", zone)
		fmt.Fprintf(&db, "@ IN SOA ns.%s. hostmaster.%s. 1 60 60 600 60\n", zone, zone)
		fmt.Fprintf(&db, "@ IN NS ns.%s.\n", zone)
		db.WriteString("ns IN A 127.0.0.1\n")
		for _, line := range extra[zone] {
			db.WriteString(line + "\n")
		}
		if err := os.WriteFile(file, []byte(db.String()), 0o644); err != nil {
			return fmt.Errorf("writing zone file: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(b.dir, "named.conf"), []byte(conf.String()), 0o644); err != nil {
		return fmt.Errorf("writing named.conf: %w", err)
	}
	return nil
}

// bindZoneOf returns the longest zone that name is in, or def.
func bindZoneOf(name string, zones []string, def string) string {
	best := ""
	for _, z := range zones {
		if (name == z || strings.HasSuffix(name, "."+z)) && len(z) > len(best) {
			best = z
		}
	}
	if best == "" {
		return def
	}
	return best
}

func bindChown(dir string) error {
	u, err := user.Lookup("bind")
	if err != nil {
		return fmt.Errorf("looking up user bind: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(path, uid, gid)
	})
}

// bindFreePort returns a loopback port that is free for both TCP and UDP.
func bindFreePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("finding a free port: no port free for both TCP and UDP")
}

func (b *BIND) waitReady(zones []string) error {
	deadline := time.Now().Add(30 * time.Second)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	pending := slices.Clone(zones)
	var lastErr error
	for len(pending) > 0 {
		select {
		case <-b.exited:
			return fmt.Errorf("named exited: %v", b.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("named did not answer SOA for %v within 30s: %v", pending, lastErr)
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(pending[0]), dns.TypeSOA)
		m.RecursionDesired = false
		r, _, err := c.Exchange(m, b.Addr)
		switch {
		case err != nil:
			lastErr = err
		case r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0:
			lastErr = fmt.Errorf("SOA %s answered %s", pending[0], dns.RcodeToString[r.Rcode])
		default:
			pending = pending[1:]
			continue
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// TXT asks the server for the TXT RRset at fqdn and returns its values (the
// character-strings of each record joined). A name with no TXT records gives
// an empty slice and no error.
func (b *BIND) TXT(ctx context.Context, fqdn string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(fqdn), dns.TypeTXT)
	m.RecursionDesired = false
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, b.Addr)
	if err != nil {
		return nil, fmt.Errorf("querying TXT %s at %s: %w", fqdn, b.Addr, err)
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("querying TXT %s at %s: server answered %s", fqdn, b.Addr, dns.RcodeToString[r.Rcode])
	}
	values := []string{}
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			values = append(values, strings.Join(txt.Txt, ""))
		}
	}
	slices.Sort(values)
	return values, nil
}

// ChallengeRecords transfers zone (AXFR) and returns the owner names
// (lowercase, with a trailing dot, sorted, without duplicates) of its TXT
// records whose name starts with _acme-challenge.
func (b *BIND) ChallengeRecords(ctx context.Context, zone string) ([]string, error) {
	m := new(dns.Msg)
	m.SetAxfr(dns.Fqdn(zone))
	tr := &dns.Transfer{}
	if deadline, ok := ctx.Deadline(); ok {
		d := time.Until(deadline)
		tr.DialTimeout, tr.ReadTimeout = d, d
	}
	envelopes, err := tr.In(m, b.Addr)
	if err != nil {
		return nil, fmt.Errorf("transferring zone %s from %s: %w", zone, b.Addr, err)
	}
	names := []string{}
	for env := range envelopes {
		if env.Error != nil {
			return nil, fmt.Errorf("transferring zone %s from %s: %w", zone, b.Addr, env.Error)
		}
		for _, rr := range env.RR {
			name := strings.ToLower(rr.Header().Name)
			if rr.Header().Rrtype == dns.TypeTXT && strings.HasPrefix(name, "_acme-challenge") {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Stop stops the server and removes its files. It may be called more than
// once.
func (b *BIND) Stop() {
	b.stopOnce.Do(func() {
		b.kill()
		os.RemoveAll(b.dir)
	})
}

func (b *BIND) kill() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
	}
}

// Log returns what named wrote so far, for failure messages.
func (b *BIND) Log() string {
	out, err := os.ReadFile(filepath.Join(b.dir, "named.log"))
	if err != nil {
		return err.Error()
	}
	return string(bytes.TrimSpace(out))
}
