// Package azkv holds the Azure Key Vault destination: every version imported
// as a Key Vault certificate (a PFX with the full chain) under the
// certificate's name, tagged as Key Vault Acmebot tags its certificates so
// that a vault shared with, or migrated from, Acmebot keeps working; and the
// reading of Acmebot's certificates for `certkeeper import`.
package azkv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Key Vault's x5t is a SHA-1 thumbprint
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// Config configures an Azure Key Vault destination.
type Config struct {
	// VaultURL is the vault, such as https://prod-kv.vault.azure.net.
	VaultURL string
	// Credential obtains tokens for Key Vault (see NewCredential).
	Credential azcore.TokenCredential
	// HTTPClient replaces the SDK's HTTP client (tests).
	HTTPClient policy.Transporter
	// DisableChallengeResourceVerification lets the vault's authentication
	// challenge name a resource outside the vault's domain (Azure Stack).
	DisableChallengeResourceVerification bool
	Logger                               *slog.Logger
}

// KeyVault is an Azure Key Vault destination. It is safe for concurrent
// use.
type KeyVault struct {
	url     string
	certs   *azcertificates.Client
	secrets *azsecrets.Client
	logger  *slog.Logger
}

var _ vault.Destination = (*KeyVault)(nil)

// New returns a Key Vault destination. It does not contact the vault.
func New(cfg Config) (*KeyVault, error) {
	if cfg.VaultURL == "" || cfg.Credential == nil {
		return nil, errors.New("azure key vault destination: vaultUrl and a credential are required")
	}
	opts := azcore.ClientOptions{}
	if cfg.HTTPClient != nil {
		opts.Transport = cfg.HTTPClient
	}
	certs, err := azcertificates.NewClient(cfg.VaultURL, cfg.Credential, &azcertificates.ClientOptions{
		ClientOptions: opts, DisableChallengeResourceVerification: cfg.DisableChallengeResourceVerification})
	if err != nil {
		return nil, fmt.Errorf("creating the Key Vault certificates client for %s: %w", cfg.VaultURL, err)
	}
	secrets, err := azsecrets.NewClient(cfg.VaultURL, cfg.Credential, &azsecrets.ClientOptions{
		ClientOptions: opts, DisableChallengeResourceVerification: cfg.DisableChallengeResourceVerification})
	if err != nil {
		return nil, fmt.Errorf("creating the Key Vault secrets client for %s: %w", cfg.VaultURL, err)
	}
	k := &KeyVault{url: strings.TrimRight(cfg.VaultURL, "/"), certs: certs, secrets: secrets, logger: cfg.Logger}
	if k.logger == nil {
		k.logger = slog.New(slog.DiscardHandler)
	}
	return k, nil
}

func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// metadataOf returns the Acmebot tag's content for v.
func metadataOf(v vault.Version) (Metadata, error) {
	leaf, err := v.Leaf()
	if err != nil {
		return Metadata{}, fmt.Errorf("reading the certificate of %s: %w", v.Name, err)
	}
	return Metadata{
		Endpoint:      normalizeEndpoint(v.ACMEEndpoint),
		DNSProvider:   v.Spec.DNSProviderName,
		DNSAlias:      v.Spec.DNSAlias,
		CertificateID: CertificateID(leaf),
	}, nil
}

// Deliver implements vault.Destination. When the vault's current version
// is v (same thumbprint), only its tags are brought up to date. Otherwise
// v is imported as a new version, unless the current one is newer, or v is
// among the older versions already (a delivery that got no answer).
func (k *KeyVault) Deliver(ctx context.Context, v vault.Version) (vault.Receipt, error) {
	leaf, err := v.Leaf()
	if err != nil {
		return vault.Receipt{}, fmt.Errorf("reading the certificate of %s: %w", v.Name, err)
	}
	thumb := sha1.Sum(leaf.Raw) //nolint:gosec // see import
	meta, err := metadataOf(v)
	if err != nil {
		return vault.Receipt{}, err
	}
	tags := tagsFor(v.Spec.Tags, meta)

	cur, err := k.certs.GetCertificate(ctx, v.Name, "", nil)
	switch {
	case isNotFound(err):
	case err != nil:
		return vault.Receipt{}, fmt.Errorf("reading certificate %s in %s: %w", v.Name, k.url, err)
	case bytes.Equal(cur.X509Thumbprint, thumb[:]):
		r := vault.Receipt{Location: string(*cur.ID)}
		if sameTags(cur.Tags, tags) {
			return r, nil
		}
		if _, err := k.certs.UpdateCertificate(ctx, v.Name, cur.ID.Version(),
			azcertificates.UpdateCertificateParameters{Tags: tags}, nil); err != nil {
			return r, fmt.Errorf("updating the tags of %s in %s: %w", v.Name, k.url, err)
		}
		r.Changed = true
		return r, nil
	case cur.Attributes != nil && cur.Attributes.NotBefore != nil && cur.Attributes.NotBefore.After(v.NotBefore):
		return vault.Receipt{Location: string(*cur.ID)}, vault.ErrSuperseded
	default:
		pager := k.certs.NewListCertificatePropertiesVersionsPager(v.Name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return vault.Receipt{}, fmt.Errorf("listing the versions of %s in %s: %w", v.Name, k.url, err)
			}
			for _, p := range page.Value {
				if p != nil && bytes.Equal(p.X509Thumbprint, thumb[:]) {
					// Imported before, then replaced by the current one.
					return vault.Receipt{Location: string(*p.ID)}, vault.ErrSuperseded
				}
			}
		}
	}

	password, err := randomPassword()
	if err != nil {
		return vault.Receipt{}, err
	}
	pfx, err := v.PFX(password)
	if err != nil {
		return vault.Receipt{}, err
	}
	key, err := issuer.ParseKeyPEM(v.KeyPEM)
	if err != nil {
		return vault.Receipt{}, fmt.Errorf("reading the private key of %s: %w", v.Name, err)
	}
	encoded := base64.StdEncoding.EncodeToString(pfx)
	enabled := true
	res, err := k.certs.ImportCertificate(ctx, v.Name, azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: &encoded,
		Password:                 &password,
		CertificatePolicy:        importPolicy(key, v.Spec.ReuseKey),
		CertificateAttributes:    &azcertificates.CertificateAttributes{Enabled: &enabled},
		Tags:                     tags,
	}, nil)
	if err != nil {
		return vault.Receipt{}, fmt.Errorf("importing %s into %s: %w", v.Name, k.url, err)
	}
	r := vault.Receipt{Changed: true}
	if res.ID != nil {
		r.Location = string(*res.ID)
	}
	k.logger.InfoContext(ctx, "certificate imported into Key Vault", "certificate", v.Name, "vault", k.url,
		"id", r.Location)
	return r, nil
}

// importPolicy is the policy sent with an import, as Key Vault's own
// example shows it: exportable key properties matching the key, and the
// secret kept as PKCS#12.
func importPolicy(key any, reuse bool) *azcertificates.CertificatePolicy {
	exportable := true
	props := &azcertificates.KeyProperties{Exportable: &exportable, ReuseKey: &reuse}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		kty, size := azcertificates.KeyTypeRSA, int32(k.Size()*8)
		props.KeyType, props.KeySize = &kty, &size
	default:
		kty := azcertificates.KeyTypeEC
		props.KeyType = &kty
		if c := curveOf(key); c != "" {
			props.Curve = &c
		}
	}
	contentType := "application/x-pkcs12"
	return &azcertificates.CertificatePolicy{
		KeyProperties:    props,
		SecretProperties: &azcertificates.SecretProperties{ContentType: &contentType},
	}
}

func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a PFX password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Current implements vault.Destination: the newest version's certificate,
// and its chain and private key from the secret Key Vault keeps beside it.
// The version id is not kept in Key Vault.
func (k *KeyVault) Current(ctx context.Context, name string) (vault.Version, error) {
	cert, err := k.certs.GetCertificate(ctx, name, "", nil)
	if isNotFound(err) {
		return vault.Version{}, vault.ErrNotFound
	}
	if err != nil {
		return vault.Version{}, fmt.Errorf("reading certificate %s in %s: %w", name, k.url, err)
	}
	return k.withSecret(ctx, name, cert.Certificate)
}

// withSecret reads the secret of the certificate version cert and returns
// the version it holds.
func (k *KeyVault) withSecret(ctx context.Context, name string, cert azcertificates.Certificate) (vault.Version, error) {
	version := ""
	if cert.ID != nil {
		version = cert.ID.Version()
	}
	sec, err := k.secrets.GetSecret(ctx, name, version, nil)
	if err != nil {
		return vault.Version{}, fmt.Errorf("reading the private key of %s in %s: %w", name, k.url, err)
	}
	if sec.Value == nil {
		return vault.Version{}, fmt.Errorf("reading the private key of %s in %s: the secret is empty", name, k.url)
	}
	v := vault.Version{Name: name}
	contentType := ""
	if sec.ContentType != nil {
		contentType = *sec.ContentType
	}
	switch contentType {
	case "application/x-pem-file":
		v.KeyPEM, v.CertPEM, v.ChainPEM = splitPEM([]byte(*sec.Value))
	default: // application/x-pkcs12: base64 PFX without a password
		raw, err := base64.StdEncoding.DecodeString(*sec.Value)
		if err != nil {
			return vault.Version{}, fmt.Errorf("decoding the PFX of %s: %w", name, err)
		}
		key, leaf, chain, err := pkcs12.DecodeChain(raw, "")
		if err != nil {
			return vault.Version{}, fmt.Errorf("decoding the PFX of %s: %w", name, err)
		}
		if v.KeyPEM, err = marshalKey(key); err != nil {
			return vault.Version{}, fmt.Errorf("encoding the private key of %s: %w", name, err)
		}
		v.CertPEM = vault.EncodeCertificates([]*x509Certificate{leaf})
		v.ChainPEM = vault.EncodeCertificates(chain)
	}
	leaf, err := v.Leaf()
	if err != nil {
		return vault.Version{}, fmt.Errorf("reading the certificate of %s in %s: %w", name, k.url, err)
	}
	v.NotBefore, v.NotAfter = leaf.NotBefore, leaf.NotAfter
	v.Serial = leaf.SerialNumber.Text(16)
	return v, nil
}
