package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-jose/go-jose/v4"
)

// Reason codes of RFC 5280 section 5.3.1 that callers name.
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
)

func checkRevocation(certDER []byte, reason int) error {
	if len(certDER) == 0 {
		return errors.New("revoking certificate: no certificate given")
	}
	if reason < 0 || reason > 10 || reason == 7 {
		return fmt.Errorf("revoking certificate: invalid reason code %d", reason)
	}
	return nil
}

func revokeMessage(certDER []byte, reason int) acme.RevokeCertMessage {
	r := uint(reason)
	return acme.RevokeCertMessage{Certificate: base64.RawURLEncoding.EncodeToString(certDER), Reason: &r}
}

// Revoke revokes the certificate (DER) with an RFC 5280 reason code, signed
// by the account key (RFC 8555 section 7.6). It returns when the CA answered;
// a refusal is a *ProblemError with the CA's words.
func (i *Issuer) Revoke(ctx context.Context, certDER []byte, reason int) error {
	if err := checkRevocation(certDER, reason); err != nil {
		return err
	}
	msg := revokeMessage(certDER, reason)
	_, err := i.withAccount(ctx, func(s *session) error {
		return s.core.Certificates.Revoke(WithEndpoint(ctx, EndpointRevokeCert), msg)
	})
	if err != nil {
		if _, ok := errors.AsType[*ProblemError](err); ok {
			return err
		}
		return fail("", "revoking certificate", err)
	}
	i.log.InfoContext(ctx, "revoked certificate", "reason", reason, "signed_by", "account key")
	return nil
}

// RevokeCertificate revokes the certificate (DER) with an RFC 5280 reason
// code. For keyCompromise with the certificate's private key given, the
// request is signed with that key (RFC 8555 section 7.6), which proves the
// compromise as Let's Encrypt requires; when the CA does not accept a
// request signed so, it is sent again signed by the account key. Every
// other reason is signed by the account key.
func (i *Issuer) RevokeCertificate(ctx context.Context, certDER []byte, certKey crypto.Signer, reason int) error {
	if reason != ReasonKeyCompromise || certKey == nil {
		return i.Revoke(ctx, certDER, reason)
	}
	err := i.RevokeWithKey(ctx, certDER, certKey, reason)
	pd, ok := errors.AsType[*acme.ProblemDetails](err)
	if !ok || pd == nil {
		return err
	}
	switch pd.Type {
	case acme.UnauthorizedErrorType, acme.MalformedErrorType, acme.BadPublicKeyErrorType, acme.BadSignatureAlgorithmErrorType:
		i.log.InfoContext(ctx, "the CA refused a revocation signed by the certificate key; signing with the account key",
			"error", err)
		if aerr := i.Revoke(ctx, certDER, reason); aerr != nil {
			return errors.Join(err, aerr)
		}
		return nil
	}
	return err
}

// maxNonceRetries bounds the retries of a request the CA answered badNonce.
const maxNonceRetries = 5

// RevokeWithKey revokes the certificate (DER) with a request signed by the
// certificate's own private key, with the public key embedded as a JWK
// (RFC 8555 section 7.6). RSA keys sign with RS256 and EC keys with ES256,
// ES384 or ES512 by curve. A refusal is a *ProblemError with the CA's words.
func (i *Issuer) RevokeWithKey(ctx context.Context, certDER []byte, certKey crypto.Signer, reason int) error {
	if err := checkRevocation(certDER, reason); err != nil {
		return err
	}
	const op = "revoking certificate with its own key"
	if cert, err := x509.ParseCertificate(certDER); err == nil {
		type equaler interface{ Equal(crypto.PublicKey) bool }
		if pub, ok := certKey.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
			return &ProblemError{Op: op, Err: errors.New("the key is not the certificate's key")}
		}
	}
	alg, err := jwsAlgorithm(certKey)
	if err != nil {
		return &ProblemError{Op: op, Err: err}
	}
	dir, err := i.Directory(ctx)
	if err != nil {
		return err
	}
	if dir.RevokeCertURL == "" {
		return &ProblemError{Op: op, Err: errors.New("the CA's directory has no revokeCert URL")}
	}
	payload, err := json.Marshal(revokeMessage(certDER, reason))
	if err != nil {
		return &ProblemError{Op: op, Err: err}
	}
	client := i.httpClient()
	nonce, err := i.newNonce(ctx, client, dir.NewNonceURL)
	if err != nil {
		return &ProblemError{Op: op, Err: err}
	}
	for attempt := 0; ; attempt++ {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: certKey}, &jose.SignerOptions{
			NonceSource:  staticNonce(nonce),
			EmbedJWK:     true,
			ExtraHeaders: map[jose.HeaderKey]any{"url": dir.RevokeCertURL},
		})
		if err != nil {
			return &ProblemError{Op: op, Err: fmt.Errorf("preparing the signature: %w", err)}
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			return &ProblemError{Op: op, Err: fmt.Errorf("signing: %w", err)}
		}
		pd, next, err := i.postJOSE(ctx, client, dir.RevokeCertURL, []byte(jws.FullSerialize()))
		if err != nil {
			return &ProblemError{Op: op, Err: err}
		}
		if pd == nil {
			i.log.InfoContext(ctx, "revoked certificate", "reason", reason, "signed_by", "certificate key")
			return nil
		}
		if pd.Type != acme.BadNonceErrorType || attempt >= maxNonceRetries || next == "" {
			return fail("", op, pd)
		}
		nonce = next
	}
}

// jwsAlgorithm is the JWS algorithm for key (RFC 7518 section 3.1).
func jwsAlgorithm(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
		return "", fmt.Errorf("unsupported curve %s", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("unsupported key type %T", key.Public())
}

type staticNonce string

func (n staticNonce) Nonce() (string, error) { return string(n), nil }

// newNonce asks the CA for a fresh anti-replay nonce (RFC 8555 section 7.2).
func (i *Issuer) newNonce(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return "", fmt.Errorf("getting a nonce: %w", err)
	}
	if i.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", i.cfg.UserAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("getting a nonce: %w", err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if n == "" {
		return "", fmt.Errorf("getting a nonce: the CA answered %d without Replay-Nonce", resp.StatusCode)
	}
	return n, nil
}

// postJOSE POSTs a flattened JWS. It returns the CA's problem document when
// it answered with an error status, and the next nonce it sent.
func (i *Issuer) postJOSE(ctx context.Context, client *http.Client, url string, body []byte) (*acme.ProblemDetails, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/jose+json")
	if i.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", i.cfg.UserAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("reading the CA's answer: %w", err)
	}
	next := resp.Header.Get("Replay-Nonce")
	if resp.StatusCode < 400 {
		return nil, next, nil
	}
	pd := &acme.ProblemDetails{}
	if err := json.Unmarshal(raw, pd); err != nil || pd.Type == "" {
		pd = &acme.ProblemDetails{Detail: fmt.Sprintf("HTTP %d", resp.StatusCode)}
	}
	if pd.HTTPStatus == 0 {
		pd.HTTPStatus = resp.StatusCode
	}
	pd.Method, pd.URL = http.MethodPost, url
	return pd, next, nil
}
