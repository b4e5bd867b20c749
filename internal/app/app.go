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
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/job"
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
	// Version is the build version, sent in the ACME User-Agent.
	Version string
	Logger  *slog.Logger
}

// App is the running service. Build it with New, run it with Run.
type App struct {
	cfg      *config.Config
	logger   *slog.Logger
	store    *store.Store
	vault    *vault.Builtin
	dns      *dns.Registry
	issuer   *issuer.Issuer
	queue    *job.Queue
	handler  http.Handler
	listener net.Listener

	profilesMu sync.Mutex
	profiles   map[string]string
	profilesAt time.Time
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
	keys, err := a.loadKeys(ctx)
	if err != nil {
		return nil, err
	}

	a.vault = vault.NewBuiltin(st, opts.MasterKey)

	providers, err := buildProviders(cfg.DNS)
	if err != nil {
		return nil, err
	}
	a.dns, err = dns.NewRegistry(providers, dns.Options{
		Resolvers: cfg.DNS.Resolvers, PropagationTimeout: cfg.DNS.PropagationTimeout, Logger: logger,
	})
	if err != nil {
		return nil, err
	}

	httpClient, err := caHTTPClient(opts.CABundle)
	if err != nil {
		return nil, err
	}
	a.issuer = issuer.New(issuer.Config{
		DirectoryURL:   cfg.ACME.Endpoint,
		Contacts:       cfg.ACME.Contacts,
		HTTPClient:     httpClient,
		UserAgent:      "certkeeper/" + opts.Version,
		DefaultProfile: cfg.ACME.Profile,
		Logger:         logger,
	}, &accountStore{store: st, key: opts.MasterKey})

	runner := job.NewRunner(st, a.issuer, a.dns, a.vault, logger)
	a.queue, err = job.New(ctx, job.Options{
		Store: st, Runner: runner, Workers: cfg.Jobs.Workers,
		Timeout: cfg.Jobs.Timeout, RescueAfter: cfg.Jobs.RescueAfter, Housekeeping: a.housekeeping(), Logger: logger,
	})
	if err != nil {
		return nil, err
	}

	a.handler = api.New(api.Options{Backend: a, Auth: keys, PublicURL: cfg.PublicURL, Logger: logger, Ready: st.Ping})
	a.listener, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	ok = true
	return a, nil
}

// Addr is the address the API listens on.
func (a *App) Addr() net.Addr { return a.listener.Addr() }

// Handler is the HTTP API.
func (a *App) Handler() http.Handler { return a.handler }

// Run serves the API and works jobs until ctx is done, then stops taking
// requests and jobs, lets running ones finish within a grace period, and
// closes the database.
func (a *App) Run(ctx context.Context) error {
	defer a.store.Close()
	if err := a.queue.Start(ctx); err != nil {
		return err
	}
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
		out = append(out, store.APIKey{Name: k.Name, Hash: hex.EncodeToString(h[:]), Roles: k.Roles, Source: "config"})
	}
	return out
}

// loadKeys builds the authenticator from the hashed keys in the database.
func (a *App) loadKeys(ctx context.Context) (*auth.Keys, error) {
	rows, err := a.store.APIKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]auth.Key, 0, len(rows))
	for _, r := range rows {
		k := auth.Key{Name: r.Name}
		if n, err := hex.Decode(k.Hash[:], []byte(r.Hash)); err != nil || n != len(k.Hash) {
			return nil, fmt.Errorf("reading the hash of API key %q: not %d hex bytes", r.Name, len(k.Hash))
		}
		for _, role := range r.Roles {
			k.Roles = append(k.Roles, auth.Role(role))
		}
		keys = append(keys, k)
	}
	return auth.NewKeys(keys, a.cfg.Auth.RequireRoles), nil
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
