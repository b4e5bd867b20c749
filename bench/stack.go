package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// zone is the zone BIND serves and every client writes its challenges to.
const zone = "bench.test"

// stack is Pebble and BIND9 on loopback, started as subprocesses.
type stack struct {
	dir string

	// BIND.
	dnsAddr  string
	tsigName string
	tsigAlg  string
	tsigKey  string

	// Pebble.
	directory string
	caBundle  string
	client    *http.Client

	procs []*exec.Cmd
}

// startStack builds and starts Pebble and BIND9 in a fresh temporary
// directory.
func startStack(ctx context.Context) (*stack, error) {
	dir, err := os.MkdirTemp("", "certkeeper-bench-")
	if err != nil {
		return nil, fmt.Errorf("creating bench directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("opening bench directory to named: %w", err)
	}
	s := &stack{dir: dir}
	if err := s.startBIND(ctx); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.startPebble(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *stack) stop() {
	for _, c := range s.procs {
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
		}
	}
	// BENCH_KEEP_LOGS names a directory that receives the logs of Pebble,
	// BIND and certkeeper, to investigate a failed run.
	if keep := os.Getenv("BENCH_KEEP_LOGS"); keep != "" {
		if logs, _ := filepath.Glob(filepath.Join(s.dir, "*.log")); len(logs) > 0 && os.MkdirAll(keep, 0o755) == nil {
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					_ = os.WriteFile(filepath.Join(keep, filepath.Base(l)), b, 0o644)
				}
			}
		}
	}
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
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
	return 0, fmt.Errorf("finding a free port: none free for TCP and UDP")
}

func (s *stack) startBIND(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	s.dnsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.tsigName, s.tsigAlg, s.tsigKey = "bench-key", "hmac-sha256", base64.StdEncoding.EncodeToString(raw)
	bdir := filepath.Join(s.dir, "bind")
	if err := os.Mkdir(bdir, 0o755); err != nil {
		return fmt.Errorf("creating BIND directory: %w", err)
	}
	conf := fmt.Sprintf(`options {
	directory %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	pid-file %q;
	session-keyfile %q;
	update-quota 1000;
	managed-keys-directory %q;
};
controls { };
key %q { algorithm %s; secret %q; };
zone %q { type primary; file %q; update-policy { grant %q zonesub TXT; }; };
`, bdir, port, filepath.Join(bdir, "named.pid"), filepath.Join(bdir, "session.key"), bdir,
		s.tsigName, s.tsigAlg, s.tsigKey, zone, filepath.Join(bdir, zone+".db"), s.tsigName)
	db := fmt.Sprintf("$ORIGIN %s.\n$TTL 60\n@ IN SOA ns.%s. hostmaster.%s. 1 60 60 600 60\n@ IN NS ns.%s.\nns IN A 127.0.0.1\n", zone, zone, zone, zone)
	if err := os.WriteFile(filepath.Join(bdir, "named.conf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("writing named.conf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bdir, zone+".db"), []byte(db), 0o644); err != nil {
		return fmt.Errorf("writing zone file: %w", err)
	}
	args := []string{"-c", filepath.Join(bdir, "named.conf"), "-g", "-4", "-n", "2"}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("bind")
		if err != nil {
			return fmt.Errorf("looking up user bind: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := filepath.Walk(bdir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(p, uid, gid)
		}); err != nil {
			return fmt.Errorf("giving BIND directory to bind: %w", err)
		}
		args = append(args, "-u", "bind")
	}
	if err := s.spawn("/usr/sbin/named", args, nil, filepath.Join(s.dir, "named.log")); err != nil {
		return err
	}
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		m := new(dns.Msg)
		m.SetQuestion(zone+".", dns.TypeSOA)
		if r, _, err := c.ExchangeContext(ctx, m, s.dnsAddr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "named.log"))
	return fmt.Errorf("waiting for BIND: no SOA answer within 30s:\n%s", log)
}

func (s *stack) spawn(bin string, args, env []string, logPath string) error {
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", logPath, err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if env != nil {
		cmd.Env = env
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	s.procs = append(s.procs, cmd)
	return nil
}

// goBuild builds pkg into the stack directory and returns the binary.
func (s *stack) goBuild(name, pkg string) (string, error) {
	out := filepath.Join(s.dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w: %s", pkg, err, b)
	}
	return out, nil
}

func (s *stack) startPebble(ctx context.Context) error {
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		return fmt.Errorf("finding the pebble module: %w", err)
	}
	mod := strings.TrimSpace(string(modDir))
	bin, err := s.goBuild("pebble", "github.com/letsencrypt/pebble/v2/cmd/pebble")
	if err != nil {
		return err
	}
	listen, mgmt := 0, 0
	if listen, err = freePort(); err != nil {
		return err
	}
	if mgmt, err = freePort(); err != nil {
		return err
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":             filepath.Join(mod, "test", "certs", "localhost", "cert.pem"),
		"privateKey":              filepath.Join(mod, "test", "certs", "localhost", "key.pem"),
		"httpPort":                5002,
		"tlsPort":                 5001,
		"keyAlgorithm":            "ecdsa",
		"retryAfter":              map[string]int{"authz": 0, "order": 0},
		"profiles": map[string]any{
			"default": map[string]any{"description": "the one profile", "validityPeriod": 7776000},
		},
	}}
	raw, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(s.dir, "pebble.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return fmt.Errorf("writing pebble config: %w", err)
	}
	env := append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0", "PEBBLE_WFE_NONCEREJECT=0")
	if err := s.spawn(bin, []string{"-config", cfgPath, "-dnsserver", s.dnsAddr}, env, filepath.Join(s.dir, "pebble.log")); err != nil {
		return err
	}
	s.directory = fmt.Sprintf("https://127.0.0.1:%d/dir", listen)
	s.caBundle = filepath.Join(mod, "test", "certs", "pebble.minica.pem")
	pemBytes, err := os.ReadFile(s.caBundle)
	if err != nil {
		return fmt.Errorf("reading pebble CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 64
	s.client = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.directory, nil)
		if resp, err := s.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "pebble.log"))
	return fmt.Errorf("waiting for pebble: no directory within 30s:\n%s", log)
}
