package issuer

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-jose/go-jose/v4"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// EAB is an External Account Binding (RFC 8555 section 7.3.4): the key id
// and MAC key a CA hands out to tie a new ACME account to a customer
// account.
type EAB struct {
	KeyID string
	// HMACKey is the MAC key, base64url as CAs show it (padded or not).
	HMACKey secret.String
	// Algorithm is HS256, HS384 or HS512; empty means HS256.
	Algorithm string
}

// ErrEABRequired is wrapped by the error of a registration at a CA whose
// directory says externalAccountRequired when no EAB is configured.
var ErrEABRequired = errors.New("the CA requires an External Account Binding (externalAccountBinding with keyId and hmacKey) and none is configured")

// signEAB returns the externalAccountBinding JWS of a newAccount request:
// the account's public key signed with the MAC key, protected by the key id
// and the newAccount URL. Its errors never hold the MAC key.
func signEAB(accountKey crypto.Signer, newAccountURL string, e *EAB) ([]byte, error) {
	var alg jose.SignatureAlgorithm
	switch strings.ToUpper(e.Algorithm) {
	case "", "HS256":
		alg = jose.HS256
	case "HS384":
		alg = jose.HS384
	case "HS512":
		alg = jose.HS512
	default:
		return nil, fmt.Errorf("signing the external account binding: unsupported algorithm %q (want HS256, HS384 or HS512)", e.Algorithm)
	}
	mac, err := decodeMACKey(e.HMACKey.Reveal())
	if err != nil {
		return nil, err
	}
	jwk, err := (&jose.JSONWebKey{Key: accountKey.Public()}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding the account key for the external account binding: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: mac}, &jose.SignerOptions{
		ExtraHeaders: map[jose.HeaderKey]any{"kid": e.KeyID, "url": newAccountURL},
	})
	if err != nil {
		return nil, errors.New("signing the external account binding: the MAC key is not usable")
	}
	sig, err := signer.Sign(jwk)
	if err != nil {
		return nil, errors.New("signing the external account binding failed")
	}
	return []byte(sig.FullSerialize()), nil
}

// decodeMACKey decodes a base64url (or base64) MAC key; the error never
// holds the key.
func decodeMACKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	return nil, errors.New("signing the external account binding: the MAC key is not base64url")
}

// contacts returns the configured contacts as account contact URLs.
func (i *Issuer) contacts() []string {
	out := make([]string, 0, len(i.cfg.Contacts))
	for _, c := range i.cfg.Contacts {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if !strings.Contains(c, ":") {
			c = "mailto:" + c
		}
		out = append(out, c)
	}
	return out
}

// syncContacts updates the account's contacts at the CA (RFC 8555 section
// 7.3.2) and in the store when the configuration changed them. A failure is
// logged: the account still works. i.mu is held.
func (i *Issuer) syncContacts(ctx context.Context, s *session) {
	want := i.contacts()
	if slices.Equal(slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(s.acct.Contacts))) {
		return
	}
	if len(want) == 0 {
		i.log.InfoContext(ctx, "contacts were removed from the configuration; the account keeps its contacts at the CA",
			"account_uri", s.acct.URI)
		return
	}
	if _, err := s.core.Accounts.Update(ctx, s.acct.URI, acme.Account{Contact: want}); err != nil {
		i.log.WarnContext(ctx, "updating the account's contacts at the CA", "account_uri", s.acct.URI, "error", err)
		return
	}
	s.acct.Contacts = want
	if err := i.accounts.SaveAccount(ctx, s.acct); err != nil {
		i.log.WarnContext(ctx, "saving the account's new contacts", "account_uri", s.acct.URI, "error", err)
		return
	}
	i.log.InfoContext(ctx, "updated the account's contacts", "account_uri", s.acct.URI, "contacts", want)
}

// AccountURI returns the URI of the account at the CA, registering the
// account on first use.
func (i *Issuer) AccountURI(ctx context.Context) (string, error) {
	s, err := i.session(ctx)
	if err != nil {
		return "", err
	}
	return s.acct.URI, nil
}

// Rollover replaces the account key with a new EC P-256 key (RFC 8555
// section 7.3.5) and stores it, registering the account first when there is
// none. It returns the account URI. When the new key cannot be stored after
// the CA accepted it, the old key is put back at the CA, so the stored
// account keeps working.
func (i *Issuer) Rollover(ctx context.Context) (string, error) {
	newKey, err := GenerateKey("EC", 0, "P-256")
	if err != nil {
		return "", fmt.Errorf("rolling over the account key: %w", err)
	}
	op := "rolling over the account key at " + i.cfg.DirectoryURL
	s, err := i.withAccount(ctx, func(s *session) error { return s.core.Accounts.KeyChange(ctx, newKey) })
	if err != nil {
		if _, ok := errors.AsType[*ProblemError](err); ok {
			return "", err
		}
		return "", fail("", op, err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	acct := s.acct
	oldKey := acct.Key
	acct.Key = newKey
	if err := i.accounts.SaveAccount(ctx, acct); err != nil {
		if rerr := s.core.Accounts.KeyChange(context.WithoutCancel(ctx), oldKey); rerr != nil {
			return "", fmt.Errorf("%s: saving the new key after the CA accepted it: %w; putting the old key back also failed: %v", op, err, rerr)
		}
		return "", fmt.Errorf("%s: saving the new key: %w (the old key was put back at the CA)", op, err)
	}
	i.sess = &session{acct: acct, core: s.core}
	i.log.InfoContext(ctx, "rolled over the account key", "account_uri", acct.URI)
	return acct.URI, nil
}

// refresh replaces s with the stored account when the store holds another
// one (another process rolled the key over or re-registered), and reports
// whether it did.
func (i *Issuer) refresh(ctx context.Context, s *session) (*session, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.sess != nil && i.sess != s {
		return i.sess, true
	}
	return i.storedReplacement(ctx, s)
}

// storedReplacement returns a session for the stored account when it
// differs from stale's account. i.mu is held.
func (i *Issuer) storedReplacement(ctx context.Context, stale *session) (*session, bool) {
	stored, err := i.accounts.Account(ctx, i.cfg.DirectoryURL)
	if err != nil || stored.Key == nil || stored.URI == "" {
		return nil, false
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := stored.Key.Public().(equaler); stored.URI == stale.acct.URI && ok && pub.Equal(stale.acct.Key.Public()) {
		return nil, false
	}
	core, err := i.newCore(ctx, stored.URI, stored.Key)
	if err != nil {
		return nil, false
	}
	i.log.InfoContext(ctx, "using the account stored by another process", "account_uri", stored.URI)
	i.sess = &session{acct: stored, core: core}
	return i.sess, true
}

// signatureRefused reports whether err says the CA could not verify the
// request's signature with the account's key, as after another process
// rolled the key over.
func signatureRefused(err error) bool {
	pd, ok := errors.AsType[*acme.ProblemDetails](err)
	if !ok || pd == nil {
		return false
	}
	switch pd.Type {
	case acme.MalformedErrorType, acme.UnauthorizedErrorType, acme.BadPublicKeyErrorType:
		d := strings.ToLower(pd.Detail)
		return strings.Contains(d, "verif") || strings.Contains(d, "signature")
	}
	return false
}

// StoredAccountURI returns the URI of the account in use or stored, without
// registering one; "" when there is none yet.
func (i *Issuer) StoredAccountURI(ctx context.Context) string {
	i.mu.Lock()
	s := i.sess
	i.mu.Unlock()
	if s != nil {
		return s.acct.URI
	}
	if acct, err := i.accounts.Account(ctx, i.cfg.DirectoryURL); err == nil {
		return acct.URI
	}
	return ""
}
