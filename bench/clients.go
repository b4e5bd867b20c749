package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/providers/dns/dnsupdate"
	"github.com/go-acme/lego/v5/registration"

	ckdns "github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rfc2136"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// client obtains certificates; each element of certs is the names of one
// certificate. How it spreads them over time is its own: certbot and lego
// one after another, certkeeper and the issuer all at once.
type client interface {
	name() string
	obtain(ctx context.Context, certs [][]string) error
}

// ---- certbot ----

type certbot struct {
	s    *stack
	dir  string
	cred string
}

func newCertbot(s *stack) (*certbot, error) {
	dir := filepath.Join(s.dir, "certbot")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating certbot directory: %w", err)
	}
	host, port, _ := strings.Cut(s.dnsAddr, ":")
	cred := filepath.Join(dir, "rfc2136.ini")
	ini := fmt.Sprintf("dns_rfc2136_server = %s\ndns_rfc2136_port = %s\ndns_rfc2136_name = %s\ndns_rfc2136_secret = %s\ndns_rfc2136_algorithm = HMAC-SHA256\n",
		host, port, s.tsigName, s.tsigKey)
	if err := os.WriteFile(cred, []byte(ini), 0o600); err != nil {
		return nil, fmt.Errorf("writing certbot credentials: %w", err)
	}
	return &certbot{s: s, dir: dir, cred: cred}, nil
}

func (c *certbot) name() string { return "certbot" }

func (c *certbot) obtain(ctx context.Context, certs [][]string) error {
	for _, names := range certs {
		args := []string{"certonly", "--non-interactive", "--agree-tos", "--register-unsafely-without-email",
			"--server", c.s.directory,
			"--config-dir", filepath.Join(c.dir, "config"), "--work-dir", filepath.Join(c.dir, "work"), "--logs-dir", filepath.Join(c.dir, "logs"),
			"--dns-rfc2136", "--dns-rfc2136-credentials", c.cred, "--dns-rfc2136-propagation-seconds", "0",
			"--key-type", "ecdsa", "--elliptic-curve", "secp256r1",
			"--cert-name", strings.ReplaceAll(names[0], "*", "star")}
		for _, n := range names {
			args = append(args, "-d", n)
		}
		cmd := exec.CommandContext(ctx, "certbot", args...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+c.s.caBundle)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("certbot for %s: %w: %s", names[0], err, out)
		}
	}
	return nil
}

// ---- lego as a library ----

type legoUser struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *legoUser) GetEmail() string                       { return "" }
func (u *legoUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer           { return u.key }

type legoClient struct {
	c *lego.Client
}

func newLego(ctx context.Context, s *stack) (*legoClient, error) {
	// lego checks propagation through a process-wide resolver: point it at
	// BIND (the authoritative check would ask port 53).
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: []string{s.dnsAddr}, Timeout: 5 * time.Second}))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating lego account key: %w", err)
	}
	u := &legoUser{key: key}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = s.directory
	cfg.HTTPClient = s.client
	c, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating lego client: %w", err)
	}
	pcfg := dnsupdate.NewDefaultConfig()
	pcfg.Nameserver = s.dnsAddr
	pcfg.TSIGAlgorithm = s.tsigAlg + "."
	pcfg.TSIGKey = s.tsigName
	pcfg.TSIGSecret = s.tsigKey
	pcfg.PropagationTimeout = 60 * time.Second
	p, err := dnsupdate.NewDNSProviderConfig(pcfg)
	if err != nil {
		return nil, fmt.Errorf("creating lego dnsupdate provider: %w", err)
	}
	if err := c.Challenge.SetDNS01Provider(p, dns01.DisableAuthoritativeNssPropagationRequirement()); err != nil {
		return nil, fmt.Errorf("setting lego DNS-01 provider: %w", err)
	}
	reg, err := c.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return nil, fmt.Errorf("registering lego account: %w", err)
	}
	u.reg = reg
	return &legoClient{c: c}, nil
}

func (l *legoClient) name() string { return "lego" }

func (l *legoClient) obtain(ctx context.Context, certs [][]string) error {
	for _, names := range certs {
		if _, err := l.c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: names, Bundle: true, KeyType: certcrypto.EC256}); err != nil {
			return fmt.Errorf("lego for %s: %w", names[0], err)
		}
	}
	return nil
}

// ---- certkeeper's issuer alone ----

type memAccounts struct {
	mu sync.Mutex
	m  map[string]issuer.Account
}

func (a *memAccounts) Account(_ context.Context, dir string) (issuer.Account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	acct, ok := a.m[dir]
	if !ok {
		return issuer.Account{}, issuer.ErrNoAccount
	}
	return acct, nil
}

func (a *memAccounts) SaveAccount(_ context.Context, acct issuer.Account) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[acct.DirectoryURL] = acct
	return nil
}

var _ issuer.AccountStore = (*memAccounts)(nil)

// issuerAlone is internal/issuer with the rfc2136 solver, in process, with
// no API, database or queue. It runs all certificates at once.
type issuerAlone struct {
	iss *issuer.Issuer
	reg *ckdns.Registry
	// limit bounds the issuances in flight (0: all at once), as
	// certkeeper's jobs.workers bounds its own.
	limit int

	mu    sync.Mutex
	steps map[operation.Step][]time.Duration
}

func newIssuerAlone(s *stack, limit int) (*issuerAlone, error) {
	p, err := rfc2136.New(rfc2136.Config{Nameserver: s.dnsAddr, TSIGKeyName: s.tsigName, TSIGAlgorithm: s.tsigAlg, TSIGSecret: secret.String(s.tsigKey)})
	if err != nil {
		return nil, fmt.Errorf("creating rfc2136 provider: %w", err)
	}
	reg, err := ckdns.NewRegistry([]ckdns.Named{{Name: "BIND", Provider: p, Zones: []string{zone}}}, ckdns.Options{Resolvers: []string{s.dnsAddr}})
	if err != nil {
		return nil, fmt.Errorf("creating DNS registry: %w", err)
	}
	iss := issuer.New(issuer.Config{Name: "pebble", DirectoryURL: s.directory, HTTPClient: s.client,
		Logger: slog.New(slog.DiscardHandler)}, &memAccounts{m: map[string]issuer.Account{}})
	return &issuerAlone{iss: iss, reg: reg, limit: limit, steps: map[operation.Step][]time.Duration{}}, nil
}

func (a *issuerAlone) name() string { return "issuer" }

func (a *issuerAlone) obtain(ctx context.Context, certs [][]string) error {
	errs := make([]error, len(certs))
	var wg sync.WaitGroup
	slots := make(chan struct{}, max(a.limit, len(certs)))
	if a.limit > 0 {
		slots = make(chan struct{}, a.limit)
	}
	for i, names := range certs {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			var last operation.Step
			lastAt := time.Now()
			record := func(now time.Time) {
				if last != "" {
					a.mu.Lock()
					a.steps[last] = append(a.steps[last], now.Sub(lastAt))
					a.mu.Unlock()
				}
			}
			progress := func(_ context.Context, st operation.Step) {
				now := time.Now()
				record(now)
				last, lastAt = st, now
			}
			_, err := a.iss.Obtain(ctx, issuer.Request{Names: names, KeyType: "EC", Curve: "P-256"}, a.reg.Solver("BIND", ""), progress)
			record(time.Now())
			if err != nil {
				errs[i] = fmt.Errorf("issuer for %s: %w", names[0], err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ---- the certkeeper binary through its REST API ----

type certkeeper struct {
	base string
	key  string
	pid  int
	http *http.Client
	// pollEvery is the wait between two polls of an operation's state.
	pollEvery time.Duration
	// pprof is the address of its profiler, if it serves one.
	pprof string

	// lastState is the Location of the last operation posted.
	lastState string

	mu    sync.Mutex
	steps map[operation.Step][]time.Duration
}

// ckInstance is one certkeeper data directory and configuration, with the
// binary that serves it.
type ckInstance struct {
	bin, cfgPath, base, key, logPath string
}

// prepareCertkeeper builds the binary (once per stack), writes a data
// directory and configuration named name, and seeds it with seed
// certificates. checkInterval, when set, is renewal.checkInterval.
func prepareCertkeeper(ctx context.Context, s *stack, name string, seed seedOptions, checkInterval time.Duration, workers int) (*ckInstance, error) {
	bin := filepath.Join(s.dir, "certkeeper")
	if _, err := os.Stat(bin); err != nil {
		if bin, err = s.goBuild("certkeeper", "./cmd/certkeeper"); err != nil {
			return nil, err
		}
	}
	dataDir := filepath.Join(s.dir, name+"-data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating certkeeper data directory: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	key := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	keyFile := filepath.Join(dataDir, "master.key")
	cfg := map[string]any{
		"listen":        fmt.Sprintf("127.0.0.1:%d", port),
		"dataDir":       dataDir,
		"masterKeyFile": keyFile,
		"acme":          map[string]any{"endpoint": s.directory, "caBundle": s.caBundle, "profile": "default"},
		"dns": map[string]any{
			"resolvers":          []string{s.dnsAddr},
			"propagationTimeout": "60s",
			"providers": []map[string]any{{
				"name": "BIND", "type": "rfc2136", "zones": []string{zone}, "nameserver": s.dnsAddr,
				"tsigKeyName": s.tsigName, "tsigAlgorithm": s.tsigAlg, "tsigSecret": s.tsigKey,
			}},
		},
		// No per-caller rate limit: the bench submits 200 certificates at
		// once and keeps 50 issuances running during the API load.
		"auth": map[string]any{"apiKeys": []map[string]any{{"name": "bench", "key": key,
			"roles": []string{"Acmebot.IssueCertificate", "Acmebot.RevokeCertificate"}}},
			"rateLimit": map[string]any{"perMinute": 0}},
		"log": map[string]any{"level": "warn", "format": "text"},
	}
	if workers > 0 {
		cfg["jobs"] = map[string]any{"workers": workers}
	}
	if checkInterval > 0 {
		cfg["renewal"] = map[string]any{"checkInterval": checkInterval.String()}
	}
	raw, _ := json.Marshal(cfg) // YAML is a superset of JSON
	cfgPath := filepath.Join(dataDir, "certkeeper.yaml")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return nil, fmt.Errorf("writing certkeeper config: %w", err)
	}
	if seed.N > 0 {
		seed.Directory = s.directory
		d, err := seedCertificates(ctx, dataDir, keyFile, seed)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "seeded %d certificates into %s in %v\n", seed.N, name, d.Round(time.Millisecond))
	}
	return &ckInstance{bin: bin, cfgPath: cfgPath, base: fmt.Sprintf("http://127.0.0.1:%d", port), key: key,
		logPath: filepath.Join(s.dir, name+".log")}, nil
}

// env is the environment certkeeper runs with: the bench's, without
// CERTKEEPER_ variables, plus extra.
func ckEnv(extra ...string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CERTKEEPER_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// newCertkeeper prepares an instance with seed certificates stored and
// workers job workers (0: the default) and starts it.
func newCertkeeper(ctx context.Context, s *stack, seed seedOptions, workers int, extraEnv ...string) (*certkeeper, error) {
	in, err := prepareCertkeeper(ctx, s, "certkeeper", seed, 0, workers)
	if err != nil {
		return nil, err
	}
	if err := s.spawn(in.bin, []string{"serve", "--config", in.cfgPath}, ckEnv(extraEnv...), in.logPath); err != nil {
		return nil, err
	}
	c := &certkeeper{base: in.base, key: in.key, pid: s.procs[len(s.procs)-1].Process.Pid, pollEvery: 20 * time.Millisecond,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	for _, kv := range extraEnv {
		if v, ok := strings.CutPrefix(kv, "CERTKEEPER_DEBUG_PPROF="); ok {
			c.pprof = v
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if st, _, err := c.do(ctx, http.MethodGet, "/readyz", nil); err == nil && st == http.StatusOK {
			return c, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(in.logPath)
	return nil, fmt.Errorf("waiting for certkeeper /readyz: not ready within 60s:\n%s", log)
}

func (c *certkeeper) name() string { return "certkeeper" }

func (c *certkeeper) do(ctx context.Context, method, path string, body any) (int, *http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Functions-Key", c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp.StatusCode, resp, nil
}

// obtain posts every certificate at once (one goroutine each, as many
// clients would), then polls each operation's state until it answers
// something other than 202, as Acmebot clients do.
func (c *certkeeper) obtain(ctx context.Context, certs [][]string) error {
	errs := make([]error, len(certs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	// Each operation is polled every pollEvery, and every millisecond per
	// certificate when that is longer (200 ms for 200), so that the pollers
	// together send at most ~1,000 requests a second: 200 pollers at 20 ms
	// would send 10,000, and the server would spend the two cores answering
	// them instead of issuing.
	every := max(c.pollEvery, time.Duration(len(certs))*time.Millisecond)
	for i, names := range certs {
		wg.Go(func() {
			st, resp, err := c.do(ctx, http.MethodPost, "/api/certificate", map[string]any{"dnsNames": names, "keyType": "EC", "keyCurveName": "P-256"})
			if err != nil {
				errs[i] = fmt.Errorf("posting %s: %w", names[0], err)
				return
			}
			if st != http.StatusAccepted {
				b, _ := io.ReadAll(resp.Body)
				errs[i] = fmt.Errorf("posting %s: status %d: %s", names[0], st, b)
				return
			}
			loc := resp.Header.Get("Location")
			mu.Lock()
			c.lastState = loc
			mu.Unlock()
			for {
				st, resp, err := c.do(ctx, http.MethodGet, loc, nil)
				switch {
				case err != nil:
					errs[i] = fmt.Errorf("polling %s: %w", loc, err)
					return
				case st == http.StatusOK:
					c.recordSteps(ctx, loc)
					return
				case st != http.StatusAccepted:
					b, _ := io.ReadAll(resp.Body)
					errs[i] = fmt.Errorf("operation for %s: status %d: %s", names[0], st, b)
					return
				}
				select {
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				case <-time.After(every):
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rssKB returns the resident set size of pid from /proc, in KiB.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// recordSteps reads the operation's steps (GET /api/operations/{id}) and
// adds their durations to c.steps.
func (c *certkeeper) recordSteps(ctx context.Context, stateURL string) {
	st, resp, err := c.do(ctx, http.MethodGet, strings.Replace(stateURL, "/api/state/", "/api/operations/", 1), nil)
	if err != nil || st != http.StatusOK {
		return
	}
	var op struct {
		CreatedAt time.Time `json:"createdAt"`
		UpdatedAt time.Time `json:"updatedAt"`
		Steps     []struct {
			Name       operation.Step `json:"name"`
			StartedAt  time.Time      `json:"startedAt"`
			FinishedAt *time.Time     `json:"finishedAt"`
			DurationMs *int64         `json:"durationMs"`
		} `json:"steps"`
	}
	if json.NewDecoder(resp.Body).Decode(&op) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.steps == nil {
		c.steps = map[operation.Step][]time.Duration{}
	}
	for _, s := range op.Steps {
		if s.DurationMs != nil {
			c.steps[s.Name] = append(c.steps[s.Name], time.Duration(*s.DurationMs)*time.Millisecond)
		}
	}
	// Time in the queue before the first step, and from the end of the last
	// step to the operation's last update (its end).
	if n := len(op.Steps); n > 0 {
		c.steps["(queued before the first step)"] = append(c.steps["(queued before the first step)"], op.Steps[0].StartedAt.Sub(op.CreatedAt))
		if last := op.Steps[n-1].FinishedAt; last != nil {
			c.steps["(after the last step)"] = append(c.steps["(after the last step)"], op.UpdatedAt.Sub(*last))
		}
	}
}
