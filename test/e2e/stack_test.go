package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// The databases every test runs on.
var databases = []string{"sqlite", "postgres"}

// Role names the issuer key carries.
const (
	roleIssue  = "Acmebot.IssueCertificate"
	roleRevoke = "Acmebot.RevokeCertificate"

	roleReadCertificate = "Certkeeper.ReadCertificate"
)

// zone is the test zone BIND serves and certkeeper's BIND provider manages.
const zone = "example.test"

// refusedZone is a second zone of BIND and the BIND provider, on Pebble's
// domainBlocklist. (The blocked domain is a zone of its own because Pebble
// v2.10.3's IsDomainBlocked panics on a name with fewer labels than a
// blocklist entry that shares its suffix: blocking blocked.example.test would
// crash the order for example.test.)
const refusedZone = "refused.test"

// zones are the zones of the BIND provider.
var zones = []string{zone, refusedZone}

// stackOptions changes a stack from its defaults.
type stackOptions struct {
	// RequireRoles is auth.requireRoles.
	RequireRoles bool
	// Pebble overrides the Pebble options (DNSServer is always BIND).
	Pebble *testenv.PebbleOptions
	// ExtraRecords are zone-file lines added to BIND's zones.
	ExtraRecords []string
	// Jobs is the jobs block of the config; nil leaves it out.
	Jobs map[string]any
	// Database, with db "postgres", is the PostgreSQL URL to use instead
	// of a new database on the shared server.
	Database string
	// RateLimit is auth.rateLimit; nil leaves the default.
	RateLimit map[string]any
}

// stack is BIND, Pebble and one certkeeper process configured for them.
type stack struct {
	db     string
	bind   *testenv.BIND
	pebble *testenv.Pebble
	srv    *server

	// issuerKey carries both Acmebot roles; readerKey carries none;
	// keyReaderKey carries Certkeeper.ReadCertificate.
	issuerKey, readerKey, keyReaderKey string
}

// startStack starts BIND (zones example.test and refused.test), Pebble
// resolving through BIND and refusing refused.test,
// and certkeeper on db ("sqlite" or "postgres"). Everything stops in
// t.Cleanup.
func startStack(t *testing.T, db string, opts stackOptions) *stack {
	t.Helper()
	bind := testenv.StartBIND(t, testenv.BINDOptions{Zones: zones, ExtraRecords: opts.ExtraRecords})
	po := testenv.PebbleOptions{BlockedDomains: []string{refusedZone}, NonceRejectPercent: 20}
	if opts.Pebble != nil {
		po = *opts.Pebble
	}
	po.DNSServer = bind.Addr
	pebble := testenv.StartPebble(t, po)

	database := ""
	if db == "postgres" {
		database = opts.Database
		if database == "" {
			database = testenv.PostgresURL(t)
		}
	}
	s := &stack{
		db:        db,
		bind:      bind,
		pebble:    pebble,
		issuerKey: "ik-" + randomHex(16),
		readerKey: "rk-" + randomHex(16),

		keyReaderKey: "kk-" + randomHex(16),
	}
	dataDir := t.TempDir()
	cfg := map[string]any{
		"dataDir":  dataDir,
		"database": database,
		"acme": map[string]any{
			"endpoint": pebble.DirectoryURL,
			"contacts": []string{"admin@example.test"},
			"caBundle": pebble.CABundle,
			"profile":  "default",
		},
		"dns": map[string]any{
			"resolvers":          []string{bind.Addr},
			"propagationTimeout": "8s",
			"providers": []map[string]any{
				{
					"name":          "BIND",
					"type":          "rfc2136",
					"zones":         zones,
					"nameserver":    bind.Addr,
					"tsigKeyName":   bind.TSIGKeyName,
					"tsigAlgorithm": bind.TSIGAlgorithm,
					"tsigSecret":    bind.TSIGSecret,
				},
			},
		},
		"auth": map[string]any{
			"apiKeys": []map[string]any{
				{"name": "issuer", "key": s.issuerKey, "roles": []string{roleIssue, roleRevoke}},
				{"name": "reader", "key": s.readerKey, "roles": []string{}},
				{"name": "keys", "key": s.keyReaderKey, "roles": []string{roleReadCertificate}},
			},
			"requireRoles": opts.RequireRoles,
		},
		"log": map[string]any{"level": "debug", "format": "text"},
	}
	if opts.Jobs != nil {
		cfg["jobs"] = opts.Jobs
	}
	if opts.RateLimit != nil {
		cfg["auth"].(map[string]any)["rateLimit"] = opts.RateLimit
	}
	s.srv = startServer(t, cfg, dataDir)
	return s
}

// server is one certkeeper process, which can be killed and started again
// with the same configuration and data.
type server struct {
	t          *testing.T
	cfg        map[string]any
	configPath string
	logPath    string
	baseURL    string
	client     *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// exitErr is the result of the last process's Wait.
	exitErr error
}

// startServer writes cfg (with a free listen address) into dir and starts
// certkeeper serve on it, waiting until GET /api/ping answers 200. The
// process is stopped with SIGTERM in t.Cleanup, which also checks that it
// exited cleanly; its output is logged when the test failed.
func startServer(t *testing.T, cfg map[string]any, dir string) *server {
	t.Helper()
	s := newServer(t, cfg, dir)
	var err error
	for range 3 { // the free port may be taken before certkeeper binds it
		s.configure(t)
		if err = s.start(); err == nil {
			return s
		}
		if !s.portTaken() {
			break
		}
	}
	t.Fatalf("starting certkeeper: %v", err) // the cleanup logs its output
	return nil
}

// newServer prepares a server for cfg in dir without starting it; its
// cleanup is registered as startServer describes.
func newServer(t *testing.T, cfg map[string]any, dir string) *server {
	t.Helper()
	s := &server{
		t:          t,
		cfg:        cfg,
		configPath: filepath.Join(dir, "certkeeper.yaml"),
		logPath:    filepath.Join(t.TempDir(), "certkeeper.log"),
		client:     &http.Client{Timeout: 30 * time.Second},
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("certkeeper did not stop cleanly on SIGTERM: %v", err)
		}
		s.scanLogForSecrets(t)
		out, _ := os.ReadFile(s.logPath)
		if bytes.Contains(out, []byte("WARNING: DATA RACE")) {
			t.Errorf("certkeeper reported a data race")
		}
		if t.Failed() {
			s.logOutput()
		}
	})
	return s
}

// configure writes the config file with a free listen address.
func (s *server) configure(t *testing.T) {
	t.Helper()
	addr := freeAddr(t)
	s.cfg["listen"] = addr
	s.baseURL = "http://" + addr
	raw, err := yaml.Marshal(s.cfg)
	if err != nil {
		t.Fatalf("encoding config: %v", err)
	}
	if err := os.WriteFile(s.configPath, raw, 0o600); err != nil {
		t.Fatalf("writing config: %v", err)
	}
}

// portTaken reports whether the last start failed because another process
// took the listen address first.
func (s *server) portTaken() bool {
	out, _ := os.ReadFile(s.logPath)
	return bytes.Contains(out, []byte("address already in use"))
}

// start runs the binary and waits for /api/ping.
func (s *server) start() error {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening log: %w", err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "--- certkeeper serve started at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(certkeeperBin, "serve", "--config", s.configPath)
	cmd.Env = certkeeperEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", certkeeperBin, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done, s.exitErr = cmd, done, nil
	s.mu.Unlock()
	go func() {
		werr := cmd.Wait()
		s.mu.Lock()
		s.exitErr = werr
		s.mu.Unlock()
		close(done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if s.pingOK(ctx) {
			return nil
		}
		select {
		case <-done:
			s.mu.Lock()
			defer s.mu.Unlock()
			s.cmd = nil
			return fmt.Errorf("certkeeper exited before answering /api/ping: %v", s.exitErr)
		case <-ctx.Done():
			_ = s.kill()
			return fmt.Errorf("waiting for %s/api/ping: %w", s.baseURL, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// certkeeperEnv is the test process's environment without CERTKEEPER_*
// variables, which would override the config file.
func certkeeperEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CERTKEEPER_") {
			env = append(env, kv)
		}
	}
	return env
}

func (s *server) pingOK(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/api/ping", nil)
	if err != nil {
		return false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// restart starts the process again with the same config and data; the
// previous one must have exited.
func (s *server) restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting certkeeper: %v", err)
	}
}

// kill ends the process with SIGKILL and waits for it.
func (s *server) kill() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing certkeeper: %w", err)
	}
	<-done
	return nil
}

// stop ends the process with SIGTERM and returns an error when it did not
// exit with status 0 within 30 seconds.
func (s *server) stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("still running 30s after SIGTERM")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErr
}

func (s *server) logOutput() {
	out, err := os.ReadFile(s.logPath)
	if err != nil {
		s.t.Logf("reading certkeeper log: %v", err)
		return
	}
	const limit = 40000
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	s.t.Logf("certkeeper output (%s):\n%s", s.logPath, out)
}

// response is a read HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.Status, r.Body)
}

// do sends a request with key in X-Functions-Key (none when key is empty)
// and reads the whole response.
func (s *server) do(ctx context.Context, t *testing.T, method, path, key string, body []byte) response {
	t.Helper()
	target := path
	if !strings.HasPrefix(path, "http://") {
		target = s.baseURL + path
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		t.Fatalf("building request %s %s: %v", method, target, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-Functions-Key", key)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response of %s %s: %v", method, target, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// postJSON sends v as JSON.
func (s *server) postJSON(ctx context.Context, t *testing.T, path, key string, v any) response {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding request: %v", err)
	}
	return s.do(ctx, t, http.MethodPost, path, key, body)
}

var operationID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// accepted checks that r is a 202 with an absolute Location of an operation
// on this server and returns the Location.
func (s *server) accepted(t *testing.T, r response) string {
	t.Helper()
	if r.Status != http.StatusAccepted {
		t.Fatalf("got %s, want 202", r)
	}
	loc := r.Header.Get("Location")
	id, ok := strings.CutPrefix(loc, s.baseURL+"/api/state/")
	if !ok || !operationID.MatchString(id) {
		t.Fatalf("Location = %q, want %s/api/state/<32 hex>", loc, s.baseURL)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	return loc
}

// issue posts an issue request with the issuer key and returns the
// operation's Location.
func (s *stack) issue(ctx context.Context, t *testing.T, req map[string]any) string {
	t.Helper()
	return s.srv.accepted(t, s.srv.postJSON(ctx, t, "/api/certificate", s.issuerKey, req))
}

// wait polls location until it answers something other than 202 and returns
// that answer. It gives up when ctx ends.
func (s *server) wait(ctx context.Context, t *testing.T, location, key string) response {
	t.Helper()
	for {
		r := s.do(ctx, t, http.MethodGet, location, key, nil)
		if r.Status != http.StatusAccepted {
			return r
		}
		if got := r.Header.Get("Location"); got != location {
			t.Errorf("202 from %s carries Location %q, want the same URL", location, got)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("operation %s still running: %v", location, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitSucceeded polls location until it answers and fails the test unless
// that is 200.
func (s *stack) waitSucceeded(ctx context.Context, t *testing.T, location string) {
	t.Helper()
	r := s.srv.wait(ctx, t, location, s.issuerKey)
	if r.Status != http.StatusOK {
		t.Fatalf("operation %s ended with %s, want 200", location, r)
	}
}

// problem is an RFC 9457 problem document with Acmebot's validation errors.
type problem struct {
	Type    string              `json:"type"`
	Title   string              `json:"title"`
	Status  int                 `json:"status"`
	Detail  string              `json:"detail"`
	Errors  map[string][]string `json:"errors"`
	TraceID string              `json:"traceId"`
}

// decodeProblem checks the content type and decodes a problem document.
func decodeProblem(t *testing.T, r response) problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type = %q, want application/problem+json (body %s)", ct, r.Body)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("decoding problem %s: %v", r.Body, err)
	}
	if p.Status != r.Status {
		t.Errorf("problem status = %d, response status %d", p.Status, r.Status)
	}
	return p
}

// certItem is an item of GET /api/certificates.
type certItem struct {
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	DNSNames          []string  `json:"dnsNames"`
	DNSProviderName   string    `json:"dnsProviderName"`
	CreatedOn         time.Time `json:"createdOn"`
	ExpiresOn         time.Time `json:"expiresOn"`
	X509Thumbprint    string    `json:"x509Thumbprint"`
	KeyType           string    `json:"keyType"`
	KeySize           *int      `json:"keySize"`
	KeyCurveName      *string   `json:"keyCurveName"`
	ReuseKey          bool      `json:"reuseKey"`
	IsExpired         bool      `json:"isExpired"`
	IsIssuedByAcmebot bool      `json:"isIssuedByAcmebot"`
	IsSameEndpoint    bool      `json:"isSameEndpoint"`
	ACMEEndpoint      string    `json:"acmeEndpoint"`
	DNSAlias          string    `json:"dnsAlias"`
	// SerialNumber is a certkeeper addition: the serial in hex.
	SerialNumber string `json:"serialNumber"`
}

// certificate returns the list item named name, failing the test when the
// list does not answer 200 or has no such item.
func (s *stack) certificate(ctx context.Context, t *testing.T, name string) certItem {
	t.Helper()
	r := s.srv.do(ctx, t, http.MethodGet, "/api/certificates", s.readerKey, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/certificates: %s", r)
	}
	var items []certItem
	if err := json.Unmarshal(r.Body, &items); err != nil {
		t.Fatalf("decoding certificates %s: %v", r.Body, err)
	}
	for _, it := range items {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("GET /api/certificates has no item named %q: %s", name, r.Body)
	return certItem{}
}

// challengeOwners returns the _acme-challenge TXT owner names left in BIND's
// zones for the given DNS names (wildcards share their base name's record).
func (s *stack) challengeOwners(ctx context.Context, t *testing.T, names ...string) []string {
	t.Helper()
	var all []string
	for _, z := range zones {
		owners, err := s.bind.ChallengeRecords(ctx, z)
		if err != nil {
			t.Fatalf("listing challenge records: %v", err)
		}
		all = append(all, owners...)
	}
	var left []string
	for _, n := range names {
		owner := "_acme-challenge." + strings.TrimPrefix(n, "*.") + "."
		if slices.Contains(all, owner) && !slices.Contains(left, owner) {
			left = append(left, owner)
		}
	}
	return left
}

// assertNoChallengeRecords fails the test when BIND still holds an
// _acme-challenge TXT record for one of names.
func (s *stack) assertNoChallengeRecords(ctx context.Context, t *testing.T, names ...string) {
	t.Helper()
	if left := s.challengeOwners(ctx, t, names...); len(left) > 0 {
		t.Errorf("TXT records left in BIND: %v", left)
	}
}

// forEachDatabase runs f as a parallel subtest per database.
func forEachDatabase(t *testing.T, f func(t *testing.T, db string)) {
	t.Helper()
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			f(t, db)
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("choosing a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
