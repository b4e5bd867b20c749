// Package app holds the assembled certkeeper service: it turns a Config into
// the database, the vault, the DNS providers, the issuer, the job queue and
// the HTTP API, runs them, and stops them gracefully.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/job"
	"github.com/certkeeper/certkeeper/internal/metrics"
	"github.com/certkeeper/certkeeper/internal/notify"
	"github.com/certkeeper/certkeeper/internal/renewal"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// Options is what New needs besides the configuration: what cmd/ read from
// files and the environment.
type Options struct {
	Config *config.Config
	// MasterKey seals private keys at rest.
	MasterKey *secret.Key
	// CABundle is extra PEM roots trusted for the CA's HTTPS API.
	CABundle []byte
	// CABundles are the extra PEM roots of the named CAs (cas[].caBundle),
	// by CA name.
	CABundles map[string][]byte
	// Version is the build version, sent in the ACME User-Agent.
	Version string
	Logger  *slog.Logger
	// AzureTransport replaces the HTTP client of Azure Key Vault
	// destinations (tests).
	AzureTransport policy.Transporter
}

// App is the running service. Build it with New, run it with Run.
type App struct {
	cfg      *config.Config
	logger   *slog.Logger
	store    *store.Store
	vault    *vault.Builtin
	dns      *dns.Registry
	cas      *issuer.Set
	queue    *job.Queue
	handler  http.Handler
	listener net.Listener
	access   *Access
	counters *auth.Counters
	// deliveries delivers versions to the configured destinations.
	deliveries *job.Deliveries

	// Issue 5: renewal, webhooks, metrics, readiness.
	metrics      *metrics.Metrics
	notifier     *notify.Notifier
	scheduler    *renewal.Scheduler
	policy       renewal.Policy
	queueRunning atomic.Bool
}

// New opens the database (migrating it), builds every part and binds the
// listening socket, so that errors surface before Run.
func New(ctx context.Context, opts Options) (*App, error) {
	cfg, logger := opts.Config, opts.Logger
	a := &App{cfg: cfg, logger: logger}

	dsn := cfg.Database.Reveal()
	if dsn == "" {
		dsn = cfg.SQLitePath()
	}
	st, err := store.Open(ctx, dsn, logger)
	if err != nil {
		return nil, err
	}
	a.store = st
	ok := false
	defer func() {
		if !ok {
			st.Close()
		}
	}()

	if err := st.SyncConfigAPIKeys(ctx, configKeys(cfg.Auth)); err != nil {
		return nil, err
	}
	// Issue 7: keys looked up in the database per request, OIDC issuers,
	// the audit log.
	a.access, a.counters = NewAccess(st, logger), &auth.Counters{}
	authn, err := authenticator(cfg.Auth, a.access, logger)
	if err != nil {
		return nil, err
	}
	proxies, err := trustedProxies(cfg.Auth.TrustedProxies)
	if err != nil {
		return nil, err
	}

	if err := CheckMasterKey(ctx, st, opts.MasterKey); err != nil {
		return nil, err
	}
	a.vault = vault.NewBuiltin(st, opts.MasterKey)

	providers, err := buildProviders(ctx, cfg.DNS)
	if err != nil {
		return nil, err
	}
	a.dns, err = dns.NewRegistry(providers, dns.Options{
		Resolvers: cfg.DNS.Resolvers, PropagationTimeout: cfg.DNS.PropagationTimeout,
		FollowCNAMEs: cfg.DNS.FollowCNAMEs, Logger: logger,
	})
	if err != nil {
		return nil, err
	}

	// The metrics come first: they wrap each CA's HTTP client.
	a.observability(cfg)
	if a.cas, err = buildCAs(ctx, opts, &accountStore{store: st, key: opts.MasterKey}, a.metrics.Transport); err != nil {
		return nil, err
	}

	runner := job.NewRunner(st, job.SetOf(a.cas), a.metrics.Solvers(a.dns), a.vault, logger)
	if err := a.setupDeliveries(runner, opts.AzureTransport); err != nil {
		return nil, err
	}
	runner.SetHooks(job.Hooks{Ended: a.operationEnded, Observe: func(ctx context.Context, f job.Finished) {
		a.metrics.ObserveOperation(string(f.Op.Kind), string(f.Op.Status), f.Duration)
		a.access.OperationDone(ctx, f.Op)
	}})
	jobOpts := job.Options{
		Store: st, Runner: runner, Workers: cfg.Jobs.Workers,
		Timeout: cfg.Jobs.Timeout, RescueAfter: cfg.Jobs.RescueAfter, Housekeeping: a.housekeeping(), Logger: logger,
	}
	a.renewalJobs(cfg, &jobOpts)
	a.queue, err = job.New(ctx, jobOpts)
	if err != nil {
		return nil, err
	}

	// Health and metrics first, then the dashboard's pages and headers in
	// front of the API.
	dashboard, err := a.withDashboard(api.New(api.Options{Backend: a, Auth: authn, PublicURL: cfg.PublicURL, Logger: logger,
		Access: a.access, TrustedProxies: proxies, Counters: a.counters,
		RateLimit: api.RateLimit{PerMinute: cfg.Auth.RateLimit.PerMinute, Burst: cfg.Auth.RateLimit.Burst}}))
	if err != nil {
		return nil, err
	}
	a.handler = a.withHealth(dashboard)
	a.listener, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	ok = true
	return a, nil
}

// Addr is the address the API listens on.
func (a *App) Addr() net.Addr { return a.listener.Addr() }

// Handler is the HTTP API with the dashboard in front of it.
func (a *App) Handler() http.Handler { return a.handler }

// Run serves the API and works jobs until ctx is done, then stops taking
// requests and jobs, lets running ones finish within a grace period, and
// closes the database.
func (a *App) Run(ctx context.Context) error {
	defer a.store.Close()
	if err := a.queue.Start(ctx); err != nil {
		return err
	}
	a.queueRunning.Store(true)
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(a.listener) }()
	stopPrepare := a.prepareAccount(ctx)
	defer stopPrepare()
	a.logger.InfoContext(ctx, "certkeeper is serving", "addr", a.listener.Addr().String(),
		"database", string(a.store.Dialect()), "acme_endpoint", a.cfg.ACME.Endpoint, "replica_id", a.queue.ReplicaID())

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serving HTTP: %w", err)
	}
	a.logger.Info("stopping")
	a.queueRunning.Store(false)
	// jobs.shutdownGrace bounds how long running operations may take to
	// finish; after it they are cancelled and handed back to the queue.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Jobs.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(stopCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		runErr = errors.Join(runErr, fmt.Errorf("stopping HTTP server: %w", err))
	}
	if err := a.queue.Stop(stopCtx); err != nil {
		runErr = errors.Join(runErr, err)
	}
	a.logger.Info("stopped")
	return runErr
}

func configKeys(c config.Auth) []store.APIKey {
	out := make([]store.APIKey, 0, len(c.APIKeys))
	for _, k := range c.APIKeys {
		h := auth.HashKey(k.Key.Reveal())
		zones, _ := normalizeZones(k.Zones) // checked by config validation
		out = append(out, store.APIKey{Name: k.Name, Hash: hex.EncodeToString(h[:]), Roles: k.Roles, Zones: zones, Source: "config"})
	}
	return out
}

// caHTTPClient returns the client that talks to the CA: the system roots
// plus bundle.
func caHTTPClient(bundle []byte) (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if len(bundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(bundle) {
			return nil, errors.New("acme.caBundle holds no PEM certificate")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: transport, Timeout: 30 * time.Second}, nil
}
