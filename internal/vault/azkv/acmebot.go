package azkv

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// Adopted is a certificate Key Vault Acmebot issued, read back for import:
// its current version with the private key and chain, and a spec made from
// its policy and tags so that certkeeper can renew it.
type Adopted struct {
	Version  vault.Version
	Metadata Metadata
}

// ListAcmebot returns every enabled certificate in the vault that carries
// Acmebot's tags (the JSON Acmebot tag, or the legacy Issuer=Acmebot), with
// its current version. A certificate that cannot be read is reported in
// skipped, by name, and left out.
func (k *KeyVault) ListAcmebot(ctx context.Context) (adopted []Adopted, skipped map[string]error, err error) {
	skipped = map[string]error{}
	pager := k.certs.NewListCertificatePropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("listing the certificates in %s: %w", k.url, err)
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil {
				continue
			}
			if _, ok := ReadMetadata(p.Tags); !ok {
				continue
			}
			if p.Attributes != nil && p.Attributes.Enabled != nil && !*p.Attributes.Enabled {
				continue
			}
			name := p.ID.Name()
			a, err := k.adopt(ctx, name)
			if err != nil {
				skipped[name] = err
				continue
			}
			adopted = append(adopted, a)
		}
	}
	return adopted, skipped, nil
}

func (k *KeyVault) adopt(ctx context.Context, name string) (Adopted, error) {
	res, err := k.certs.GetCertificate(ctx, name, "", nil)
	if err != nil {
		return Adopted{}, fmt.Errorf("reading certificate %s in %s: %w", name, k.url, err)
	}
	meta, _ := ReadMetadata(res.Tags)
	v, err := k.withSecret(ctx, name, res.Certificate)
	if err != nil {
		return Adopted{}, err
	}
	leaf, err := v.Leaf()
	if err != nil {
		return Adopted{}, err
	}
	spec := certificate.Spec{Name: name, DNSNames: policyNames(res.Policy), DNSProviderName: meta.DNSProvider,
		DNSAlias: meta.DNSAlias, Profile: meta.Profile}
	if len(spec.DNSNames) == 0 {
		spec.DNSNames = leaf.DNSNames
	}
	switch pub := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		spec.KeyType, spec.KeySize = certificate.KeyTypeRSA, pub.Size()*8
	case *ecdsa.PublicKey:
		spec.KeyType, spec.KeyCurveName = certificate.KeyTypeEC, pub.Curve.Params().Name
	default:
		return Adopted{}, fmt.Errorf("certificate %s has a %T key, which certkeeper does not issue", name, pub)
	}
	if res.Policy != nil && res.Policy.KeyProperties != nil && res.Policy.KeyProperties.ReuseKey != nil {
		spec.ReuseKey = *res.Policy.KeyProperties.ReuseKey
	}
	if custom := CustomTags(res.Tags); len(custom) > 0 {
		spec.Tags = custom
	}
	v.Spec = spec
	if meta.Endpoint != "" {
		v.ACMEEndpoint = "https://" + meta.Endpoint + "/directory"
	}
	v.Thumbprint = fmt.Sprintf("%X", res.X509Thumbprint)
	if res.Attributes != nil && res.Attributes.Created != nil {
		v.CreatedAt = res.Attributes.Created.UTC()
	}
	return Adopted{Version: v, Metadata: meta}, nil
}

func policyNames(p *azcertificates.CertificatePolicy) []string {
	if p == nil || p.X509CertificateProperties == nil || p.X509CertificateProperties.SubjectAlternativeNames == nil {
		return nil
	}
	var out []string
	for _, n := range p.X509CertificateProperties.SubjectAlternativeNames.DNSNames {
		if n != nil {
			out = append(out, *n)
		}
	}
	return out
}
