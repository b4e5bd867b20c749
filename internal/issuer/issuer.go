package issuer

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
)

// Config configures an Issuer for one ACME CA.
type Config struct {
	// Name is the CA's configured name, used in logs, steps and errors.
	Name string
	// DirectoryURL is the CA's ACME directory.
	DirectoryURL string
	// Contacts are the account's contact addresses; plain e-mail addresses
	// get "mailto:" prepended.
	Contacts []string
	// HTTPClient talks to the CA; it must already trust the CA's HTTPS
	// certificate. Nil means http.DefaultTransport. A request without a
	// client timeout is bounded at 30 seconds. The Issuer never changes it.
	HTTPClient *http.Client
	// UserAgent is sent before lego's own user agent.
	UserAgent string
	// DefaultProfile is used when Request.Profile is empty; empty means the
	// CA's default profile.
	DefaultProfile string
	// EAB, when set, binds a newly registered account to an account at the
	// CA (RFC 8555 section 7.3.4).
	EAB *EAB
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Issuer obtains and revokes certificates at one ACME CA. It is safe for
// concurrent use: concurrent calls share one account, which is loaded or
// registered once.
type Issuer struct {
	cfg      Config
	accounts AccountStore
	log      *slog.Logger

	mu   sync.Mutex
	sess *session

	dirMu sync.Mutex
	dir   *cachedDirectory

	// observeWait, when set, is told of every polling wait (see backoff).
	observeWait func(header string, retryAfter, delay time.Duration)
}

// session is an account together with the lego client signing as it.
type session struct {
	acct Account
	core *api.Core
}

// New returns an Issuer for cfg, keeping its account in accounts. It does no
// I/O; the account is loaded or registered on first use.
func New(cfg Config, accounts AccountStore) *Issuer {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Issuer{
		cfg:      cfg,
		accounts: accounts,
		log:      logger.With("component", "issuer", "ca", cfg.Name, "directory_url", cfg.DirectoryURL),
	}
}

// DirectoryURL returns the CA's ACME directory URL.
func (i *Issuer) DirectoryURL() string { return i.cfg.DirectoryURL }

// Name returns the CA's configured name.
func (i *Issuer) Name() string { return i.cfg.Name }

// DefaultProfile returns the profile used when a request names none.
func (i *Issuer) DefaultProfile() string { return i.cfg.DefaultProfile }

// HasEAB reports whether an External Account Binding is configured.
func (i *Issuer) HasEAB() bool { return i.cfg.EAB != nil }

// requestTimeout bounds one HTTP request to the CA when the configured
// client sets no timeout of its own.
const requestTimeout = 30 * time.Second

// httpClient returns a private copy of the configured client whose transport
// records Retry-After headers. lego wraps the transport of the client it is
// given, so each lego client gets its own copy.
func (i *Issuer) httpClient() *http.Client {
	var c http.Client
	if i.cfg.HTTPClient != nil {
		c = *i.cfg.HTTPClient
	}
	if c.Timeout == 0 {
		c.Timeout = requestTimeout
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &retryAfterTransport{base: &classifyingTransport{base: base}}
	return &c
}

// newCore builds a lego client; it fetches the directory. lego's constructor
// takes no context, so it runs aside and ctx cancels the wait for it; the
// request itself ends within the client's timeout.
func (i *Issuer) newCore(ctx context.Context, kid string, key crypto.Signer) (*api.Core, error) {
	type result struct {
		core *api.Core
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		core, err := api.New(i.httpClient(), i.cfg.UserAgent, i.cfg.DirectoryURL, kid, key)
		ch <- result{core, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("reading ACME directory %s: %w", i.cfg.DirectoryURL, r.err)
		}
		return r.core, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("reading ACME directory %s: %w", i.cfg.DirectoryURL, context.Cause(ctx))
	}
}

// session returns the current account session, loading the stored account
// or registering a new one on first use.
func (i *Issuer) session(ctx context.Context) (*session, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.sess != nil {
		return i.sess, nil
	}
	acct, err := i.accounts.Account(ctx, i.cfg.DirectoryURL)
	switch {
	case errors.Is(err, ErrNoAccount):
		s, err := i.registerExclusive(ctx, nil)
		if err != nil {
			return nil, err
		}
		i.sess = s
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("loading ACME account for %s: %w", i.cfg.DirectoryURL, err)
	}
	s, err := i.sessionFor(ctx, acct)
	if err != nil {
		return nil, err
	}
	i.log.InfoContext(ctx, "loaded ACME account", "account_uri", acct.URI)
	i.sess = s
	return s, nil
}

// sessionFor builds the session of a stored account.
func (i *Issuer) sessionFor(ctx context.Context, acct Account) (*session, error) {
	if acct.Key == nil || acct.URI == "" {
		return nil, fmt.Errorf("loading ACME account for %s: stored account has no key or URI", i.cfg.DirectoryURL)
	}
	core, err := i.newCore(ctx, acct.URI, acct.Key)
	if err != nil {
		return nil, err
	}
	i.sess = &session{acct: acct, core: core}
	i.syncContacts(ctx, i.sess)
	return i.sess, nil
}

// Prepare loads the stored account, or registers one, ahead of the first
// issuance. Issuances do it themselves when Prepare was not called or
// failed.
func (i *Issuer) Prepare(ctx context.Context) error {
	_, err := i.session(ctx)
	return err
}

// reregister replaces stale, an account the CA no longer knows, with a newly
// registered one. When another caller already replaced it, that replacement
// is returned, so one loss causes one registration.
func (i *Issuer) reregister(ctx context.Context, stale *session) (*session, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.sess != nil && i.sess != stale {
		return i.sess, nil
	}
	if s, ok := i.storedReplacement(ctx, stale); ok {
		return s, nil
	}
	i.log.WarnContext(ctx, "ACME account unknown to the CA; registering a new one", "account_uri", stale.acct.URI)
	s, err := i.registerExclusive(ctx, stale)
	if err != nil {
		return nil, err
	}
	i.sess = s
	return s, nil
}

// registerExclusive registers an account under the AccountStore's lock
// when it has one (AccountLocker), unless the store holds, by the time the
// lock is ours, an account other than stale: one that another process sharing
// the store registered meanwhile, which is used instead. i.mu is held.
func (i *Issuer) registerExclusive(ctx context.Context, stale *session) (*session, error) {
	locker, ok := i.accounts.(AccountLocker)
	if !ok {
		return i.register(ctx)
	}
	var s *session
	err := locker.LockAccount(ctx, i.cfg.DirectoryURL, func(ctx context.Context) error {
		acct, err := i.accounts.Account(ctx, i.cfg.DirectoryURL)
		switch {
		case err == nil && (stale == nil || acct.URI != stale.acct.URI):
			i.log.InfoContext(ctx, "using the ACME account another process registered", "account_uri", acct.URI)
			s, err = i.sessionFor(ctx, acct)
			return err
		case err != nil && !errors.Is(err, ErrNoAccount):
			return fmt.Errorf("loading ACME account for %s: %w", i.cfg.DirectoryURL, err)
		}
		s, err = i.register(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// register creates an EC P-256 account key, registers it with the CA
// (agreeing to the terms of service) and saves the account. i.mu is held,
// and the AccountStore's lock when it has one.
func (i *Issuer) register(ctx context.Context) (*session, error) {
	key, err := GenerateKey("EC", 0, "P-256")
	if err != nil {
		return nil, fmt.Errorf("registering ACME account: %w", err)
	}
	core, err := i.newCore(ctx, "", key)
	if err != nil {
		return nil, err
	}
	contacts := i.contacts()
	req := acme.Account{Contact: contacts, TermsOfServiceAgreed: true}
	if i.cfg.EAB != nil {
		if req.ExternalAccountBinding, err = signEAB(key, core.GetDirectory().NewAccountURL, i.cfg.EAB); err != nil {
			return nil, &ProblemError{Op: "registering ACME account at " + i.cfg.DirectoryURL, Err: err}
		}
	} else if core.GetDirectory().Meta.ExternalAccountRequired {
		return nil, &ProblemError{Op: "registering ACME account at " + i.cfg.DirectoryURL, Err: ErrEABRequired}
	}
	ext, err := core.Accounts.New(WithEndpoint(ctx, EndpointNewAccount), req)
	if err != nil {
		return nil, fail("", "registering ACME account at "+i.cfg.DirectoryURL, err)
	}
	if ext.Location == "" {
		return nil, fmt.Errorf("registering ACME account at %s: the CA returned no account URL", i.cfg.DirectoryURL)
	}
	acct := Account{DirectoryURL: i.cfg.DirectoryURL, URI: ext.Location, Key: key, Contacts: contacts}
	if err := i.accounts.SaveAccount(ctx, acct); err != nil {
		return nil, fmt.Errorf("saving ACME account %s: %w", ext.Location, err)
	}
	i.log.InfoContext(ctx, "registered ACME account", "account_uri", ext.Location)
	return &session{acct: acct, core: core}, nil
}

// withAccount runs do with the account session; when the CA answers that it
// does not know the account, it registers a new one and runs do once more.
func (i *Issuer) withAccount(ctx context.Context, do func(*session) error) (*session, error) {
	s, err := i.session(ctx)
	if err != nil {
		return nil, err
	}
	err = do(s)
	if err == nil || !accountMissing(err) && !signatureRefused(err) {
		return s, err
	}
	if !accountMissing(err) {
		// Another process may have rolled the account key over.
		fresh, ok := i.refresh(ctx, s)
		if !ok {
			return s, err
		}
		return fresh, do(fresh)
	}
	s, rerr := i.reregister(ctx, s)
	if rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	return s, do(s)
}
