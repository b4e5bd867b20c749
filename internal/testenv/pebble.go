// Package testenv holds the real servers tests run against: a Pebble ACME CA
// started as a subprocess, built from the module pinned in go.mod.
package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const pebbleModule = "github.com/letsencrypt/pebble/v2"

// PebbleOptions configures a Pebble started by StartPebble.
type PebbleOptions struct {
	// DNSServer is the host:port Pebble's validation authority resolves
	// through. It is required.
	DNSServer string
	// BlockedDomains is Pebble's domainBlocklist.
	BlockedDomains []string
	// NonceRejectPercent is PEBBLE_WFE_NONCEREJECT: the share of valid
	// nonces Pebble rejects as bad.
	NonceRejectPercent int
	// RetryAfterAuthz and RetryAfterOrder are Pebble's retryAfter settings in
	// seconds; 0 means Pebble sends no Retry-After header.
	RetryAfterAuthz int
	RetryAfterOrder int
	// EnvExtra is added to Pebble's environment (KEY=value).
	EnvExtra []string
	// ExternalAccountBindingRequired makes Pebble refuse accounts without an
	// External Account Binding; ExternalAccountMACKeys are the key ids and
	// their base64url MAC keys it accepts.
	ExternalAccountBindingRequired bool
	ExternalAccountMACKeys         map[string]string
	// CAAIdentities is the directory's meta.caaIdentities; empty means
	// Pebble's default, pebble.letsencrypt.org.
	CAAIdentities []string
	// AlternateRoots is PEBBLE_ALTERNATE_ROOTS: how many extra root chains
	// Pebble offers as alternate chains of every certificate.
	AlternateRoots int
}

// Pebble is a running Pebble ACME CA. Its methods are safe for concurrent use.
type Pebble struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// ManagementURL is the base of Pebble's management interface.
	ManagementURL string
	// CABundle is the path of the PEM root that signs Pebble's HTTPS
	// certificate (test/certs/pebble.minica.pem in the Pebble module).
	CABundle string

	binary     string
	configPath string
	logPath    string
	env        []string
	dnsServer  string
	client     *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// pebbleConfig is the JSON configuration file of cmd/pebble.
type pebbleConfig struct {
	Pebble struct {
		ListenAddress           string                   `json:"listenAddress"`
		ManagementListenAddress string                   `json:"managementListenAddress"`
		Certificate             string                   `json:"certificate"`
		PrivateKey              string                   `json:"privateKey"`
		HTTPPort                int                      `json:"httpPort"`
		TLSPort                 int                      `json:"tlsPort"`
		DomainBlocklist         []string                 `json:"domainBlocklist"`
		KeyAlgorithm            string                   `json:"keyAlgorithm"`
		RetryAfter              pebbleRetryAfter         `json:"retryAfter"`
		Profiles                map[string]pebbleProfile `json:"profiles"`

		ExternalAccountBindingRequired bool              `json:"externalAccountBindingRequired"`
		ExternalAccountMACKeys         map[string]string `json:"externalAccountMACKeys,omitempty"`
		CAAIdentities                  []string          `json:"caaIdentities,omitempty"`
	} `json:"pebble"`
}

type pebbleRetryAfter struct {
	Authz int `json:"authz"`
	Order int `json:"order"`
}

type pebbleProfile struct {
	Description    string `json:"description"`
	ValidityPeriod int    `json:"validityPeriod"`
	// PromoteCommonName puts the first name in the subject CN, as Let's
	// Encrypt's classic profile does.
	PromoteCommonName bool `json:"promoteCommonName,omitempty"`
}

// StartPebble starts a Pebble CA on free 127.0.0.1 ports and waits until its
// directory answers. It stops Pebble in t.Cleanup. Pebble's output goes to a
// file in t.TempDir() and is copied to the test log when the test failed.
func StartPebble(t testing.TB, opts PebbleOptions) *Pebble {
	t.Helper()
	if opts.DNSServer == "" {
		t.Fatal("testenv: PebbleOptions.DNSServer is required")
	}
	binary := PebbleBinary(t)
	modDir := pebbleModuleDir(t)

	dir := t.TempDir()
	p := &Pebble{
		CABundle:   filepath.Join(modDir, "test", "certs", "pebble.minica.pem"),
		binary:     binary,
		configPath: filepath.Join(dir, "pebble-config.json"),
		logPath:    filepath.Join(dir, "pebble.log"),
		dnsServer:  opts.DNSServer,
	}
	client, err := pebbleHTTPClient(p.CABundle)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p.client = client

	p.env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_AUTHZREUSE=0",
		"PEBBLE_WFE_NONCEREJECT="+strconv.Itoa(opts.NonceRejectPercent),
	)
	if opts.AlternateRoots > 0 {
		p.env = append(p.env, "PEBBLE_ALTERNATE_ROOTS="+strconv.Itoa(opts.AlternateRoots))
	}
	p.env = append(p.env, opts.EnvExtra...)

	var startErr error
	for range 3 { // a free port may be taken between choosing and binding it
		var cfg pebbleConfig
		cfg.Pebble.ListenAddress = pebbleFreeAddr(t)
		cfg.Pebble.ManagementListenAddress = pebbleFreeAddr(t)
		cfg.Pebble.Certificate = filepath.Join(modDir, "test", "certs", "localhost", "cert.pem")
		cfg.Pebble.PrivateKey = filepath.Join(modDir, "test", "certs", "localhost", "key.pem")
		cfg.Pebble.HTTPPort = 5002
		cfg.Pebble.TLSPort = 5001
		cfg.Pebble.DomainBlocklist = opts.BlockedDomains
		cfg.Pebble.KeyAlgorithm = "ecdsa"
		cfg.Pebble.RetryAfter = pebbleRetryAfter{Authz: opts.RetryAfterAuthz, Order: opts.RetryAfterOrder}
		cfg.Pebble.ExternalAccountBindingRequired = opts.ExternalAccountBindingRequired
		cfg.Pebble.ExternalAccountMACKeys = opts.ExternalAccountMACKeys
		cfg.Pebble.CAAIdentities = opts.CAAIdentities
		cfg.Pebble.Profiles = map[string]pebbleProfile{
			"default":    {Description: "The profile you know and love", ValidityPeriod: 7776000, PromoteCommonName: true},
			"shortlived": {Description: "A short-lived cert profile, without actual enforcement", ValidityPeriod: 518400, PromoteCommonName: true},
		}
		raw, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			t.Fatalf("testenv: encoding pebble config: %v", err)
		}
		if err := os.WriteFile(p.configPath, raw, 0o600); err != nil {
			t.Fatalf("testenv: writing pebble config: %v", err)
		}
		p.DirectoryURL = "https://" + cfg.Pebble.ListenAddress + "/dir"
		p.ManagementURL = "https://" + cfg.Pebble.ManagementListenAddress
		if startErr = p.start(); startErr == nil {
			break
		}
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			p.logOutput(t)
		}
	})
	if startErr != nil {
		p.logOutput(t)
		t.Fatalf("testenv: starting pebble: %v", startErr)
	}
	return p
}

// Restart stops Pebble and starts it again on the same addresses with the
// same configuration. Pebble keeps everything in memory, so accounts, orders
// and certificates are forgotten, as after a real CA's database loss.
func (p *Pebble) Restart(t testing.TB) {
	t.Helper()
	p.Stop()
	var err error
	for range 50 { // the old process's sockets may linger for a moment
		if err = p.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.logOutput(t)
	t.Fatalf("testenv: restarting pebble: %v", err)
}

// start runs the binary and waits until the directory answers.
func (p *Pebble) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening pebble log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command(p.binary, "-config", p.configPath, "-dnsserver", p.dnsServer)
	cmd.Env = p.env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", p.binary, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if p.directoryAnswers(ctx) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("pebble exited early: %s", cmd.ProcessState)
		case <-ctx.Done():
			p.Stop()
			return fmt.Errorf("waiting for %s: %w", p.DirectoryURL, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *Pebble) directoryAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.DirectoryURL, nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// Stop ends the Pebble process and waits for it to exit. Stopping a stopped
// Pebble does nothing.
func (p *Pebble) Stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func (p *Pebble) logOutput(t testing.TB) {
	t.Helper()
	out, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Logf("testenv: reading pebble log: %v", err)
		return
	}
	const limit = 20000
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	t.Logf("pebble output (%s):\n%s", p.logPath, out)
}

// HTTPClient returns a client that trusts CABundle, for the ACME API and the
// management interface.
func (p *Pebble) HTTPClient() *http.Client {
	c, err := pebbleHTTPClient(p.CABundle)
	if err != nil {
		// CABundle was read successfully in StartPebble; it cannot go bad.
		panic(err)
	}
	return c
}

// IssuerRoots returns the PEM of the root that signs issued certificates
// (management /roots/0).
func (p *Pebble) IssuerRoots(ctx context.Context) ([]byte, error) { return p.Root(ctx, 0) }

// Root returns the PEM of root n (management /roots/n): 0 is the default
// chain's root, 1 and up the alternate chains' roots.
func (p *Pebble) Root(ctx context.Context, n int) ([]byte, error) {
	body, status, err := p.manage(ctx, "/roots/"+strconv.Itoa(n))
	if err != nil {
		return nil, fmt.Errorf("getting pebble root %d: %w", n, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("getting pebble root %d: status %d: %s", n, status, body)
	}
	return body, nil
}

// Revocation is what Pebble's management interface says of a certificate.
type Revocation struct {
	// Status is "Valid" or "Revoked".
	Status string
	// Reason is the RFC 5280 reason code it was revoked with; nil when none
	// was given or it is valid.
	Reason *int
}

// CertRevocation returns the status and revocation reason Pebble holds for
// the certificate with the hexadecimal serial.
func (p *Pebble) CertRevocation(ctx context.Context, serialHex string) (Revocation, error) {
	body, status, err := p.manage(ctx, "/cert-status-by-serial/"+serialHex)
	if err != nil {
		return Revocation{}, fmt.Errorf("getting status of certificate %s: %w", serialHex, err)
	}
	if status != http.StatusOK {
		return Revocation{}, fmt.Errorf("getting status of certificate %s: status %d", serialHex, status)
	}
	var out Revocation
	if err := json.Unmarshal(body, &out); err != nil {
		return Revocation{}, fmt.Errorf("decoding status of certificate %s: %w", serialHex, err)
	}
	return out, nil
}

// CertStatus returns the status Pebble holds for the certificate with the
// hexadecimal serial: "Valid" or "Revoked".
func (p *Pebble) CertStatus(ctx context.Context, serialHex string) (string, error) {
	body, status, err := p.manage(ctx, "/cert-status-by-serial/"+serialHex)
	if err != nil {
		return "", fmt.Errorf("getting status of certificate %s: %w", serialHex, err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("getting status of certificate %s: status %d", serialHex, status)
	}
	var out struct{ Status string }
	if err := json.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("decoding status of certificate %s: %w", serialHex, err)
	}
	return out.Status, nil
}

func (p *Pebble) manage(ctx context.Context, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.ManagementURL+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, err
	}
	return body, resp.StatusCode, nil
}

func pebbleHTTPClient(caBundle string) (*http.Client, error) {
	pemBytes, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("reading CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("CA bundle %s holds no certificate", caBundle)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

func pebbleFreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: choosing a free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

var (
	pebbleModOnce sync.Once
	pebbleModDir  string
	pebbleModVer  string
	pebbleModErr  error

	pebbleBuildOnce sync.Once
	pebbleBinPath   string
	pebbleBuildErr  error
)

func pebbleGoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func pebbleModuleDir(t testing.TB) string {
	t.Helper()
	pebbleModOnce.Do(func() {
		out, err := exec.Command(pebbleGoTool(), "list", "-m", "-f", "{{.Dir}} {{.Version}}", pebbleModule).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			pebbleModErr = fmt.Errorf("finding module %s: %w", pebbleModule, err)
			return
		}
		fields := strings.Fields(string(out))
		if len(fields) != 2 || fields[0] == "" {
			pebbleModErr = fmt.Errorf("finding module %s: unexpected output %q", pebbleModule, out)
			return
		}
		pebbleModDir, pebbleModVer = fields[0], fields[1]
	})
	if pebbleModErr != nil {
		t.Fatalf("testenv: %v", pebbleModErr)
	}
	return pebbleModDir
}

// PebbleBinary builds cmd/pebble from the module version in go.mod once per
// test process, into os.UserCacheDir()/certkeeper-test (or a temporary
// directory), and returns the binary's path.
func PebbleBinary(t testing.TB) string {
	t.Helper()
	pebbleModuleDir(t)
	pebbleBuildOnce.Do(func() {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir := filepath.Join(base, "certkeeper-test")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			pebbleBuildErr = fmt.Errorf("creating %s: %w", dir, err)
			return
		}
		final := filepath.Join(dir, "pebble-"+pebbleModVer)
		// Build under a name of this process, then rename: test processes of
		// other packages may build at the same time.
		tmp := fmt.Sprintf("%s.%d.tmp", final, os.Getpid())
		cmd := exec.Command(pebbleGoTool(), "build", "-o", tmp, pebbleModule+"/cmd/pebble")
		if out, err := cmd.CombinedOutput(); err != nil {
			pebbleBuildErr = fmt.Errorf("building pebble: %w: %s", err, out)
			return
		}
		if err := os.Rename(tmp, final); err != nil {
			pebbleBuildErr = fmt.Errorf("installing pebble binary: %w", err)
			return
		}
		pebbleBinPath = final
	})
	if pebbleBuildErr != nil {
		t.Fatalf("testenv: %v", pebbleBuildErr)
	}
	return pebbleBinPath
}
