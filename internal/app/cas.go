package app

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// startupCheckTimeout bounds the directory reads of the start-up check;
// requestCheckTimeout the read of one CA's directory while an issue request
// waits.
const (
	startupCheckTimeout = 10 * time.Second
	requestCheckTimeout = 5 * time.Second
)

// buildCAs builds one issuer per configured CA (acme.endpoint is the CA
// named "default") and checks their directories: a CA that requires an
// External Account Binding without one configured, or that does not offer
// the profile configured for it, fails the start. A CA that cannot be
// reached is logged and tried when a certificate needs it.
// wrap, when not nil, wraps each CA's HTTP transport (metrics).
func buildCAs(ctx context.Context, opts Options, accounts issuer.AccountStore, wrap func(http.RoundTripper) http.RoundTripper) (*issuer.Set, error) {
	cfg, logger := opts.Config, opts.Logger
	var issuers []*issuer.Issuer
	for _, ca := range cfg.AllCAs() {
		bundle := opts.CABundles[ca.Name]
		if ca.Name == config.DefaultCAName {
			bundle = opts.CABundle
		} else if len(bundle) > 0 && !hasPEMCertificate(bundle) {
			return nil, fmt.Errorf("the caBundle of CA %s holds no PEM certificate", ca.Name)
		}
		client, err := caHTTPClient(bundle)
		if err != nil {
			return nil, err
		}
		if wrap != nil {
			client.Transport = wrap(client.Transport)
		}
		var eab *issuer.EAB
		if e := ca.ExternalAccountBinding; e != nil {
			eab = &issuer.EAB{KeyID: e.KeyID, HMACKey: e.HMACKey, Algorithm: e.Algorithm}
		}
		issuers = append(issuers, issuer.New(issuer.Config{
			Name:           ca.Name,
			DirectoryURL:   ca.Endpoint,
			Contacts:       ca.Contacts,
			HTTPClient:     client,
			UserAgent:      "certkeeper/" + opts.Version,
			DefaultProfile: ca.Profile,
			EAB:            eab,
			Logger:         logger,
		}, accounts))
	}
	set, err := issuer.NewSet(issuers, cfg.DefaultCAOrder())
	if err != nil {
		return nil, err
	}
	// The CAs certificates use by default, and every one configured in cas.
	var check []*issuer.Issuer
	for _, i := range set.All() {
		if slices.Contains(set.Defaults(), i.Name()) || i.Name() != config.DefaultCAName {
			check = append(check, i)
		}
	}
	if err := checkDirectories(ctx, check, logger); err != nil {
		return nil, err
	}
	return set, nil
}

func hasPEMCertificate(bundle []byte) bool {
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if _, err := x509.ParseCertificate(b.Bytes); b.Type == "CERTIFICATE" && err == nil {
			return true
		}
	}
}

// checkDirectories reads every CA's directory at once and reports the
// configuration problems they reveal, all together.
func checkDirectories(ctx context.Context, cas []*issuer.Issuer, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, startupCheckTimeout)
	defer cancel()
	errs := make([]error, len(cas))
	var wg sync.WaitGroup
	for n, ca := range cas {
		wg.Go(func() {
			dir, err := ca.FetchDirectory(ctx)
			if err != nil {
				logger.WarnContext(ctx, "the CA cannot be reached at start; it is tried when a certificate needs it",
					"ca", ca.Name(), "directory_url", ca.DirectoryURL(), "error", err)
				return
			}
			var problems []error
			if dir.Meta.ExternalAccountRequired && !ca.HasEAB() {
				problems = append(problems, fmt.Errorf("CA %s (%s) requires an External Account Binding: set externalAccountBinding (keyId and hmacKey from the CA) for it",
					ca.Name(), ca.DirectoryURL()))
			}
			if err := issuer.CheckProfile(dir, ca.DefaultProfile()); err != nil {
				problems = append(problems, fmt.Errorf("CA %s (%s): the configured profile: %w", ca.Name(), ca.DirectoryURL(), err))
			}
			errs[n] = errors.Join(problems...)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the configuration does not suit the CAs:\n%w", err)
	}
	return nil
}

// checkCAs validates the CA choices of spec before it is queued: every CA
// it names is configured, and at least one candidate CA offers the profile
// and is not forbidden by the names' CAA records. A CA that cannot be
// reached does not fail the request: the operation tries it, and the next.
func (a *App) checkCAs(ctx context.Context, spec certificate.Spec) error {
	cands, err := a.cas.Candidates(spec.CA)
	if uc, ok := errors.AsType[*issuer.UnknownCAError](err); ok {
		return &api.InvalidError{Field: "Ca", Message: fmt.Sprintf(
			"The CA '%s' is not configured; the configured CAs are %s.", uc.Name, strings.Join(uc.Known, ", "))}
	}
	if err != nil {
		return err
	}
	var refusals []string
	var profileErr *issuer.ProfileError
	for _, ca := range cands {
		dctx, cancel := context.WithTimeout(ctx, requestCheckTimeout)
		dir, err := ca.Directory(dctx)
		cancel()
		if err != nil {
			a.logger.WarnContext(ctx, "could not read the CA's directory", "ca", ca.Name(), "error", err)
			return nil
		}
		profile := spec.Profile
		if profile == "" {
			profile = ca.DefaultProfile()
		}
		if err := issuer.CheckProfile(dir, profile); err != nil {
			profileErr, _ = errors.AsType[*issuer.ProfileError](err)
			continue
		}
		checks := a.dns.CheckCAA(ctx, spec.DNSNames, lowerAll(dir.Meta.CaaIdentities), ca.StoredAccountURI(ctx))
		forbidden := dns.CAAForbidden(ca.Name(), checks)
		if forbidden == nil || onlyAccountURI(checks) {
			return nil
		}
		refusals = append(refusals, forbidden.Error())
	}
	if len(refusals) > 0 {
		return &api.InvalidError{Field: "DnsNames", Message: strings.Join(refusals, " ") + "."}
	}
	if profileErr != nil {
		msg := fmt.Sprintf("The CA does not offer the profile %q; it offers %s.", profileErr.Profile,
			strings.Join(profileErr.Offered, ", "))
		if len(cands) > 1 {
			msg = fmt.Sprintf("No CA of %s offers the profile %q; the last offers %s.", strings.Join(names(cands), ", "),
				profileErr.Profile, strings.Join(profileErr.Offered, ", "))
		}
		return &api.InvalidError{Field: "Profile", Message: msg}
	}
	return nil
}

// onlyAccountURI reports whether every forbidding verdict comes from an
// accounturi parameter, which before the account exists cannot be
// compared: the operation checks again with the account's URI.
func onlyAccountURI(checks []dns.CAACheck) bool {
	any := false
	for _, c := range checks {
		if c.Forbidden() {
			if !strings.Contains(c.Reason, "allows only account") {
				return false
			}
			any = true
		}
	}
	return any
}

func lowerAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(id), "."))
	}
	return out
}

func names(cas []*issuer.Issuer) []string {
	out := make([]string, len(cas))
	for i, ca := range cas {
		out[i] = ca.Name()
	}
	return out
}

// revokeVersion revokes v at the CA that issued it, signed by the
// certificate's own key for keyCompromise, and records the revocation.
func (a *App) revokeVersion(ctx context.Context, v vault.Version, reason int) error {
	ca, err := a.cas.ForVersion(v.CA, v.ACMEEndpoint)
	if err != nil {
		return fmt.Errorf("revoking %s (serial %s): %w", v.Name, v.Serial, err)
	}
	block, _ := pem.Decode(v.CertPEM)
	if block == nil {
		return fmt.Errorf("reading the stored certificate of %s: no PEM block", v.Name)
	}
	key, err := issuer.ParseKeyPEM(v.KeyPEM)
	if err != nil {
		return fmt.Errorf("reading the private key of %s: %w", v.Name, err)
	}
	if err := ca.RevokeCertificate(ctx, block.Bytes, key, reason); err != nil {
		return fmt.Errorf("revoking %s (serial %s) at CA %s: %w", v.Name, v.Serial, ca.Name(), err)
	}
	if err := a.vault.MarkRevoked(ctx, v.ID, time.Now().UTC()); err != nil {
		return fmt.Errorf("recording the revocation of %s: %w", v.Name, err)
	}
	a.logger.InfoContext(ctx, "certificate revoked", "certificate", v.Name, "serial", v.Serial, "reason", reason, "ca", ca.Name())
	a.revoked(ctx, v)
	return nil
}

var _ api.CABackend = (*App)(nil)

// caFor returns the CA called name, or the first default CA for "".
func (a *App) caFor(name string) (*issuer.Issuer, error) {
	if name == "" {
		return a.cas.Default(), nil
	}
	if ca, ok := a.cas.Get(name); ok {
		return ca, nil
	}
	return nil, fmt.Errorf("%w: %q (configured: %s)", api.ErrUnknownCA, name, strings.Join(a.cas.Names(), ", "))
}

// Account implements api.CABackend: the account at the CA, registered on
// first use.
func (a *App) Account(ctx context.Context, name string) (api.AccountInfo, error) {
	ca, err := a.caFor(name)
	if err != nil {
		return api.AccountInfo{}, err
	}
	uri, err := ca.AccountURI(ctx)
	if err != nil {
		return api.AccountInfo{}, fmt.Errorf("getting the account at CA %s: %w", ca.Name(), err)
	}
	return a.accountInfo(ctx, ca, uri)
}

func (a *App) accountInfo(ctx context.Context, ca *issuer.Issuer, uri string) (api.AccountInfo, error) {
	ids, err := ca.CAAIdentities(ctx)
	if err != nil {
		return api.AccountInfo{}, fmt.Errorf("reading the directory of CA %s: %w", ca.Name(), err)
	}
	return api.AccountInfo{CA: ca.Name(), AccountURI: uri, DirectoryURL: ca.DirectoryURL(), CAAIdentities: ids}, nil
}

// RolloverAccount implements api.CABackend.
func (a *App) RolloverAccount(ctx context.Context, name string) (api.AccountInfo, error) {
	ca, err := a.caFor(name)
	if err != nil {
		return api.AccountInfo{}, err
	}
	uri, err := ca.Rollover(ctx)
	if err != nil {
		return api.AccountInfo{}, err
	}
	return a.accountInfo(ctx, ca, uri)
}

// Replace implements api.CABackend: the newest version is issued again
// with a new key and then revoked with reason.
func (a *App) Replace(ctx context.Context, name string, reason int) (string, error) {
	v, err := a.store.LatestVersion(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", vault.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	return a.queue.EnqueueReplace(ctx, v.Spec, v.ID, reason)
}

// CAEndpoints implements api.CABackend.
func (a *App) CAEndpoints() []string {
	set := map[string]bool{}
	for _, ca := range a.cas.All() {
		set[ca.DirectoryURL()] = true
	}
	return slices.Sorted(maps.Keys(set))
}
