package issuer

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
)

// Config configures an Issuer for one ACME CA.
type Config struct {
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
		log:      logger.With("component", "issuer", "directory_url", cfg.DirectoryURL),
	}
}

// DirectoryURL returns the CA's ACME directory URL.
func (i *Issuer) DirectoryURL() string { return i.cfg.DirectoryURL }

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
	c.Transport = &retryAfterTransport{base: base}
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
	return &session{acct: acct, core: core}, nil
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
	contacts := make([]string, 0, len(i.cfg.Contacts))
	for _, c := range i.cfg.Contacts {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if !strings.Contains(c, ":") {
			c = "mailto:" + c
		}
		contacts = append(contacts, c)
	}
	ext, err := core.Accounts.New(ctx, acme.Account{Contact: contacts, TermsOfServiceAgreed: true})
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
	if err == nil || !accountMissing(err) {
		return s, err
	}
	s, rerr := i.reregister(ctx, s)
	if rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	return s, do(s)
}

// Profiles returns the profiles the CA's directory offers (name to
// description; draft-ietf-acme-profiles). A CA without profiles returns an
// empty map.
func (i *Issuer) Profiles(ctx context.Context) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, i.cfg.DirectoryURL, nil)
	if err != nil {
		return nil, fmt.Errorf("reading ACME directory %s: %w", i.cfg.DirectoryURL, err)
	}
	if i.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", i.cfg.UserAgent)
	}
	resp, err := i.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading ACME directory %s: %w", i.cfg.DirectoryURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading ACME directory %s: %w", i.cfg.DirectoryURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading ACME directory %s: status %d", i.cfg.DirectoryURL, resp.StatusCode)
	}
	var dir acme.Directory
	if err := json.Unmarshal(body, &dir); err != nil {
		return nil, fmt.Errorf("decoding ACME directory %s: %w", i.cfg.DirectoryURL, err)
	}
	out := make(map[string]string, len(dir.Meta.Profiles))
	for name, desc := range dir.Meta.Profiles {
		out[name] = desc
	}
	return out, nil
}

// Revoke revokes the certificate (DER) with an RFC 5280 reason code, signed
// by the account key (RFC 8555 section 7.6). It returns when the CA answered;
// a refusal is a *ProblemError with the CA's words.
func (i *Issuer) Revoke(ctx context.Context, certDER []byte, reason int) error {
	if len(certDER) == 0 {
		return errors.New("revoking certificate: no certificate given")
	}
	if reason < 0 || reason > 10 || reason == 7 {
		return fmt.Errorf("revoking certificate: invalid reason code %d", reason)
	}
	r := uint(reason)
	msg := acme.RevokeCertMessage{
		Certificate: base64.RawURLEncoding.EncodeToString(certDER),
		Reason:      &r,
	}
	_, err := i.withAccount(ctx, func(s *session) error {
		return s.core.Certificates.Revoke(ctx, msg)
	})
	if err != nil {
		if _, ok := errors.AsType[*ProblemError](err); ok {
			return err
		}
		return fail("", "revoking certificate", err)
	}
	i.log.InfoContext(ctx, "revoked certificate", "reason", reason)
	return nil
}
