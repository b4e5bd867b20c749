// Package kv holds the HashiCorp Vault / OpenBao destination: one KV
// version 2 secret per certificate, written with check-and-set so that two
// writers cannot interleave, reached with a token, AppRole or Kubernetes
// auth.
//
// The secret at <mount>/data/<path>/<name> holds the string fields
// certificate (the leaf, PEM), chain (the issuers, PEM), private_key (PKCS#8
// PEM), not_before and not_after (RFC 3339), serial_number and version_id
// (certkeeper's version id).
package kv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// Auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// DefaultKubernetesTokenFile is where a pod's service account token is.
const DefaultKubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Config configures a KV v2 destination.
type Config struct {
	// Address is the server's URL, such as https://vault.example.com:8200.
	Address string
	// Mount is the KV v2 mount path (default "secret"); Path the prefix of
	// the certificates' secrets inside it (may be empty).
	Mount, Path string
	// Namespace is the Vault Enterprise / OpenBao namespace, if any.
	Namespace string
	// AuthMethod is token (default), approle or kubernetes; AuthMount is
	// where the method is mounted (default: its name).
	AuthMethod, AuthMount string
	// Token is the token for the token method.
	Token secret.String
	// RoleID and SecretID log in with AppRole.
	RoleID   string
	SecretID secret.String
	// Role is the Kubernetes auth role; TokenFile the service account token
	// (default DefaultKubernetesTokenFile), read at every login.
	Role, TokenFile string
	// CACert is PEM of extra roots trusted for the server's TLS.
	CACert []byte
	// HTTPClient replaces the HTTP client (tests); CACert is then ignored.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// KV is a KV v2 destination. It is safe for concurrent use.
type KV struct {
	cfg    Config
	client *vaultapi.Client
	logger *slog.Logger

	mu       sync.Mutex
	loggedIn bool
	expires  time.Time // zero: no expiry known
}

var _ vault.Destination = (*KV)(nil)

// New returns a KV v2 destination. It does not contact the server.
func New(cfg Config) (*KV, error) {
	if cfg.Address == "" {
		return nil, errors.New("vault destination: address is required")
	}
	if cfg.Mount == "" {
		cfg.Mount = "secret"
	}
	cfg.Mount = strings.Trim(cfg.Mount, "/")
	cfg.Path = strings.Trim(cfg.Path, "/")
	if cfg.AuthMethod == "" {
		cfg.AuthMethod = AuthToken
	}
	if cfg.AuthMount == "" {
		cfg.AuthMount = cfg.AuthMethod
	}
	if cfg.TokenFile == "" {
		cfg.TokenFile = DefaultKubernetesTokenFile
	}
	hc := cfg.HTTPClient
	if hc == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		if len(cfg.CACert) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(cfg.CACert) {
				return nil, errors.New("vault destination: caCert holds no PEM certificate")
			}
			transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: transport, Timeout: 60 * time.Second}
	}
	client, err := vaultapi.NewClient(&vaultapi.Config{Address: cfg.Address, HttpClient: hc, MaxRetries: 2,
		Timeout: 60 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("creating the Vault client for %s: %w", cfg.Address, err)
	}
	// NewClient reads VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS; the
	// configuration says what to use instead.
	client.ClearToken()
	client.ClearNamespace()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	k := &KV{cfg: cfg, client: client, logger: cfg.Logger}
	if k.logger == nil {
		k.logger = slog.New(slog.DiscardHandler)
	}
	return k, nil
}

func (k *KV) secretPath(name string) string { return path.Join(k.cfg.Path, name) }

func (k *KV) location(name string, version int) string {
	return fmt.Sprintf("%s/data/%s (version %d)", k.cfg.Mount, k.secretPath(name), version)
}

// maxCASAttempts bounds how often Deliver reads again after losing a
// check-and-set race.
const maxCASAttempts = 5

// Deliver implements vault.Destination: it reads the secret's metadata for
// its current version, reads that version, and writes the new one with
// cas set to it. Losing the race to another writer means reading again.
func (k *KV) Deliver(ctx context.Context, v vault.Version) (vault.Receipt, error) {
	for range maxCASAttempts {
		r, err := k.deliverOnce(ctx, v)
		if errors.Is(err, errCASConflict) {
			k.logger.DebugContext(ctx, "check-and-set conflict; reading again", "certificate", v.Name)
			continue
		}
		return r, err
	}
	return vault.Receipt{}, fmt.Errorf("writing %s: %w %d times in a row", k.secretPath(v.Name), errCASConflict, maxCASAttempts)
}

var errCASConflict = errors.New("lost a check-and-set race to another writer")

func (k *KV) deliverOnce(ctx context.Context, v vault.Version) (vault.Receipt, error) {
	p := k.secretPath(v.Name)
	current := 0
	var meta *vaultapi.KVMetadata
	err := k.call(ctx, func() (err error) {
		meta, err = k.client.KVv2(k.cfg.Mount).GetMetadata(ctx, p)
		return err
	})
	switch {
	case errors.Is(err, vaultapi.ErrSecretNotFound):
	case err != nil:
		return vault.Receipt{}, fmt.Errorf("reading the metadata of %s/metadata/%s: %w", k.cfg.Mount, p, err)
	default:
		current = meta.CurrentVersion
	}
	if current > 0 {
		cur, err := k.read(ctx, v.Name, current)
		switch {
		case errors.Is(err, vault.ErrNotFound):
			// That version was deleted or destroyed: write over it.
		case err != nil:
			return vault.Receipt{}, err
		case cur.ID == v.ID || string(cur.CertPEM) == string(v.CertPEM) && string(cur.KeyPEM) == string(v.KeyPEM) &&
			string(cur.ChainPEM) == string(v.ChainPEM):
			return vault.Receipt{Location: k.location(v.Name, current)}, nil
		case cur.NotBefore.After(v.NotBefore):
			return vault.Receipt{Location: k.location(v.Name, current)}, vault.ErrSuperseded
		}
	}
	data := map[string]any{
		"certificate":   string(v.CertPEM),
		"chain":         string(v.ChainPEM),
		"private_key":   string(v.KeyPEM),
		"not_before":    v.NotBefore.UTC().Format(time.RFC3339),
		"not_after":     v.NotAfter.UTC().Format(time.RFC3339),
		"serial_number": v.Serial,
		"version_id":    v.ID,
	}
	var written *vaultapi.KVSecret
	err = k.call(ctx, func() (err error) {
		written, err = k.client.KVv2(k.cfg.Mount).Put(ctx, p, data, vaultapi.WithCheckAndSet(current))
		return err
	})
	if isCASConflict(err) {
		return vault.Receipt{}, errCASConflict
	}
	if err != nil {
		return vault.Receipt{}, fmt.Errorf("writing %s/data/%s: %w", k.cfg.Mount, p, err)
	}
	version := current + 1
	if written != nil && written.VersionMetadata != nil {
		version = written.VersionMetadata.Version
	}
	return vault.Receipt{Changed: true, Location: k.location(v.Name, version)}, nil
}

// isCASConflict tells Vault's answer to a write whose cas is not the
// current version: 400 with "check-and-set parameter did not match the
// current version".
func isCASConflict(err error) bool {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "check-and-set parameter did not match the current version") {
			return true
		}
	}
	return false
}

// Current implements vault.Destination with the secret's newest version.
func (k *KV) Current(ctx context.Context, name string) (vault.Version, error) {
	return k.read(ctx, name, 0)
}

// read reads one version of the secret (0: the newest).
func (k *KV) read(ctx context.Context, name string, version int) (vault.Version, error) {
	p := k.secretPath(name)
	var s *vaultapi.KVSecret
	err := k.call(ctx, func() (err error) {
		if version == 0 {
			s, err = k.client.KVv2(k.cfg.Mount).Get(ctx, p)
		} else {
			s, err = k.client.KVv2(k.cfg.Mount).GetVersion(ctx, p, version)
		}
		return err
	})
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return vault.Version{}, vault.ErrNotFound
	}
	if err != nil {
		return vault.Version{}, fmt.Errorf("reading %s/data/%s: %w", k.cfg.Mount, p, err)
	}
	if s == nil || s.Data == nil {
		return vault.Version{}, vault.ErrNotFound
	}
	str := func(key string) string { s, _ := s.Data[key].(string); return s }
	v := vault.Version{
		ID: str("version_id"), Name: name, Serial: str("serial_number"),
		CertPEM: []byte(str("certificate")), ChainPEM: []byte(str("chain")), KeyPEM: []byte(str("private_key")),
	}
	leaf, err := v.Leaf()
	if err != nil {
		return vault.Version{}, fmt.Errorf("reading the certificate in %s/data/%s: %w", k.cfg.Mount, p, err)
	}
	v.NotBefore, v.NotAfter = leaf.NotBefore, leaf.NotAfter
	return v, nil
}

// call runs fn with a valid token, logging in first when the method needs
// it, and once more when the server refuses the token (403).
func (k *KV) call(ctx context.Context, fn func() error) error {
	if err := k.ensureLogin(ctx, false); err != nil {
		return err
	}
	err := fn()
	var re *vaultapi.ResponseError
	if k.cfg.AuthMethod != AuthToken && errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		if err := k.ensureLogin(ctx, true); err != nil {
			return err
		}
		return fn()
	}
	return err
}

// ensureLogin sets the client's token: the configured one, or one from a
// login that is redone when forced or when its lease is four-fifths over.
func (k *KV) ensureLogin(ctx context.Context, force bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg.AuthMethod == AuthToken {
		if !k.loggedIn {
			k.client.SetToken(k.cfg.Token.Reveal())
			k.loggedIn = true
		}
		return nil
	}
	if k.loggedIn && !force && (k.expires.IsZero() || time.Now().Before(k.expires)) {
		return nil
	}
	var body map[string]any
	switch k.cfg.AuthMethod {
	case AuthAppRole:
		body = map[string]any{"role_id": k.cfg.RoleID, "secret_id": k.cfg.SecretID.Reveal()}
	case AuthKubernetes:
		jwt, err := os.ReadFile(k.cfg.TokenFile)
		if err != nil {
			return fmt.Errorf("reading the Kubernetes service account token: %w", err)
		}
		body = map[string]any{"role": k.cfg.Role, "jwt": strings.TrimSpace(string(jwt))}
	default:
		return fmt.Errorf("vault destination: unknown auth method %q", k.cfg.AuthMethod)
	}
	loginPath := "auth/" + strings.Trim(k.cfg.AuthMount, "/") + "/login"
	// The login request must not carry an old token.
	k.client.ClearToken()
	s, err := k.client.Logical().WriteWithContext(ctx, loginPath, body)
	if err != nil {
		k.loggedIn = false
		return fmt.Errorf("logging in to %s with %s: %w", k.cfg.Address, loginPath, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		k.loggedIn = false
		return fmt.Errorf("logging in to %s with %s: the answer holds no token", k.cfg.Address, loginPath)
	}
	k.client.SetToken(s.Auth.ClientToken)
	k.loggedIn = true
	k.expires = time.Time{}
	if s.Auth.LeaseDuration > 0 {
		k.expires = time.Now().Add(time.Duration(s.Auth.LeaseDuration) * time.Second * 4 / 5)
	}
	k.logger.InfoContext(ctx, "logged in to Vault", "address", k.cfg.Address, "method", k.cfg.AuthMethod,
		"lease_seconds", s.Auth.LeaseDuration)
	return nil
}
