package azkv_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/azkv"
	"github.com/certkeeper/certkeeper/internal/vault/azkv/azkvtest"
	"github.com/certkeeper/certkeeper/internal/vault/vaulttest"
)

func newKeyVault(t *testing.T, srv *azkvtest.Server, cred azkv.CredentialConfig) *azkv.KeyVault {
	t.Helper()
	cred.Transport = srv.Client()
	if cred.Kind == "" {
		cred.Kind, cred.TenantID, cred.ClientID, cred.ClientSecret = azkv.CredentialClientSecret, srv.TenantID,
			srv.ClientID, "client-secret-for-tests"
	}
	c, err := azkv.NewCredential(cred)
	if err != nil {
		t.Fatal(err)
	}
	k, err := azkv.New(azkv.Config{VaultURL: srv.VaultURL(), Credential: c, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestConformance(t *testing.T) {
	t.Parallel()
	vaulttest.Run(t, func(t *testing.T) vault.Destination {
		srv := azkvtest.Start(t)
		srv.PageSize = 1 // list versions page by page
		return newKeyVault(t, srv, azkv.CredentialConfig{})
	}, vaulttest.Options{})
}

func TestImportRequest(t *testing.T) {
	t.Parallel()
	srv := azkvtest.Start(t)
	k := newKeyVault(t, srv, azkv.CredentialConfig{})
	v := vaulttest.NewVersion(t, "www-example-test", time.Now().Add(-time.Hour))
	v.ACMEEndpoint = "https://acme-v02.api.letsencrypt.org/directory"
	v.Spec.DNSAlias = "alias.example.net"
	v.Spec.Tags = map[string]string{" team ": " web ", "Acmebot": "user supplied"}
	r, err := k.Deliver(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Changed || !strings.HasPrefix(r.Location, srv.VaultURL()+"/certificates/www-example-test/") {
		t.Errorf("receipt = %+v", r)
	}
	if srv.Challenges() == 0 {
		t.Error("the SDK never went through the authentication challenge")
	}
	imports := srv.Imports()
	if len(imports) != 1 {
		t.Fatalf("imports = %d, want 1", len(imports))
	}
	imp := imports[0]
	if imp.Password == "" {
		t.Error("the PFX was sent without a password")
	}
	if got := vault.EncodeCertificates(append([]*x509.Certificate{imp.Leaf}, imp.Chain...)); !bytes.Equal(got,
		append(append([]byte{}, v.CertPEM...), v.ChainPEM...)) {
		t.Errorf("the PFX holds %q, want the leaf and the full chain", got)
	}
	leaf, _ := v.Leaf()
	wantTag := `{"endpoint":"acme-v02.api.letsencrypt.org","dnsProvider":"Test DNS","dnsAlias":"alias.example.net",` +
		`"certificateId":"` + azkv.CertificateID(leaf) + `"}`
	if diff := cmp.Diff(map[string]string{"Acmebot": wantTag, "team": "web"}, imp.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	wantPolicy := map[string]any{
		"key_props":    map[string]any{"exportable": true, "kty": "EC", "crv": "P-256", "reuse_key": false},
		"secret_props": map[string]any{"contentType": "application/x-pkcs12"},
	}
	if diff := cmp.Diff(wantPolicy, imp.Policy); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}

	// Delivered again with other tags: only the tags change.
	v.Spec.Tags = nil
	r, err = k.Deliver(t.Context(), v)
	if err != nil || !r.Changed {
		t.Fatalf("Deliver with new tags = %+v, %v; want changed", r, err)
	}
	if len(srv.Imports()) != 1 || srv.Versions("www-example-test") != 1 {
		t.Errorf("imports = %d, versions = %d; want the tags updated in place", len(srv.Imports()), srv.Versions("www-example-test"))
	}
	if diff := cmp.Diff(map[string]string{"Acmebot": wantTag}, srv.Tags("www-example-test")); diff != "" {
		t.Errorf("tags after the update (-want +got):\n%s", diff)
	}
}

func TestRSAPolicy(t *testing.T) {
	t.Parallel()
	srv := azkvtest.Start(t)
	k := newKeyVault(t, srv, azkv.CredentialConfig{})
	key, err := issuer.GenerateKey("RSA", 2048, "")
	if err != nil {
		t.Fatal(err)
	}
	v := vaulttest.NewVersionWithKey(t, "rsa", time.Now().Add(-time.Hour), key)
	v.Spec.ReuseKey = true
	if _, err := k.Deliver(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	got := srv.Imports()[0].Policy["key_props"]
	want := map[string]any{"exportable": true, "kty": "RSA", "key_size": float64(2048), "reuse_key": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("key_props (-want +got):\n%s", diff)
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	v := vaulttest.NewVersion(t, "cred", time.Now().Add(-time.Hour))

	t.Run("workload identity", func(t *testing.T) {
		srv := azkvtest.Start(t)
		srv.FederatedToken = "eyJhbGciOiJSUzI1NiJ9.federated.sig"
		file := filepath.Join(t.TempDir(), "azure-identity-token")
		if err := os.WriteFile(file, []byte(srv.FederatedToken), 0o600); err != nil {
			t.Fatal(err)
		}
		k := newKeyVault(t, srv, azkv.CredentialConfig{Kind: azkv.CredentialWorkloadIdentity, TenantID: srv.TenantID,
			ClientID: srv.ClientID, TokenFile: file})
		if _, err := k.Deliver(t.Context(), v); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a wrong client secret is refused without being shown", func(t *testing.T) {
		srv := azkvtest.Start(t)
		k := newKeyVault(t, srv, azkv.CredentialConfig{Kind: azkv.CredentialClientSecret, TenantID: srv.TenantID,
			ClientID: srv.ClientID, ClientSecret: "wrong-secret-value-123"})
		_, err := k.Deliver(t.Context(), v)
		if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
			t.Fatalf("Deliver = %v, want Entra ID's refusal", err)
		}
		if strings.Contains(err.Error(), "wrong-secret-value-123") {
			t.Errorf("the error shows the client secret: %v", err)
		}
	})
}

func TestSupersededByAnOlderImport(t *testing.T) {
	t.Parallel()
	srv := azkvtest.Start(t)
	k := newKeyVault(t, srv, azkv.CredentialConfig{})
	base := time.Now().Add(-time.Hour)
	v1 := vaulttest.NewVersion(t, "back", base.Add(time.Minute))
	v2 := vaulttest.NewVersion(t, "back", base)
	for _, v := range []vault.Version{v1} {
		if _, err := k.Deliver(t.Context(), v); err != nil {
			t.Fatal(err)
		}
	}
	// Someone imported an older certificate by hand over v1; v1 stays an
	// older version in the vault and is not imported again.
	leaf2, _ := v2.Leaf()
	key2, _ := issuer.ParseKeyPEM(v2.KeyPEM)
	chain, _ := vault.ParseCertificates(v2.ChainPEM)
	srv.Add("back", leaf2, chain, key2, nil, false)
	if _, err := k.Deliver(t.Context(), v1); !errors.Is(err, vault.ErrSuperseded) {
		t.Fatalf("Deliver(v1) again = %v, want ErrSuperseded (it is among the versions)", err)
	}
	if n := len(srv.Imports()); n != 1 {
		t.Errorf("imports = %d, want 1", n)
	}
}

func TestReadMetadata(t *testing.T) {
	t.Parallel()
	s := func(v string) *string { return &v }
	tests := []struct {
		name string
		tags map[string]*string
		want azkv.Metadata
		ok   bool
	}{
		{"json tag", map[string]*string{"Acmebot": s(`{"endpoint":"acme-v02.api.letsencrypt.org","dnsProvider":"Azure DNS","dnsAlias":"a.example.net","certificateId":"aki.serial"}`)},
			azkv.Metadata{Endpoint: "acme-v02.api.letsencrypt.org", DNSProvider: "Azure DNS", DNSAlias: "a.example.net", CertificateID: "aki.serial"}, true},
		{"json tag with profile", map[string]*string{"acmebot": s(`{"endpoint":"acme.example","dnsProvider":"Cloudflare","profile":"tlsserver"}`)},
			azkv.Metadata{Endpoint: "acme.example", DNSProvider: "Cloudflare", Profile: "tlsserver"}, true},
		{"legacy tags with a directory URL", map[string]*string{"Issuer": s("Acmebot"), "Endpoint": s("https://acme-v02.api.letsencrypt.org/"),
			"DnsProvider": s("Azure DNS"), "DnsAlias": s("")},
			azkv.Metadata{Endpoint: "acme-v02.api.letsencrypt.org", DNSProvider: "Azure DNS"}, true},
		{"broken json falls back to legacy", map[string]*string{"Acmebot": s("{"), "Issuer": s("Acmebot"), "Endpoint": s("acme.example")},
			azkv.Metadata{Endpoint: "acme.example"}, true},
		{"another issuer", map[string]*string{"Issuer": s("someone else")}, azkv.Metadata{}, false},
		{"no tags", nil, azkv.Metadata{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := azkv.ReadMetadata(tt.tags)
			if ok != tt.ok {
				t.Errorf("ok = %v, want %v", ok, tt.ok)
			}
			if tt.ok {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
	// Written as Acmebot writes it: these field names and order, empty
	// alias and id left out, the provider always present.
	if got, want := (azkv.Metadata{Endpoint: "acme-v02.api.letsencrypt.org"}).Encode(),
		`{"endpoint":"acme-v02.api.letsencrypt.org","dnsProvider":""}`; got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
}

func TestListAcmebot(t *testing.T) {
	t.Parallel()
	srv := azkvtest.Start(t)
	srv.PageSize = 2
	k := newKeyVault(t, srv, azkv.CredentialConfig{})
	base := time.Now().Add(-time.Hour)
	add := func(name string, tags map[string]string, reuse bool) vault.Version {
		v := vaulttest.NewVersion(t, name, base)
		leaf, _ := v.Leaf()
		key, _ := issuer.ParseKeyPEM(v.KeyPEM)
		chain, _ := vault.ParseCertificates(v.ChainPEM)
		srv.Add(name, leaf, chain, key, tags, reuse)
		return v
	}
	modern := add("modern", map[string]string{"Acmebot": `{"endpoint":"acme-v02.api.letsencrypt.org","dnsProvider":"Azure DNS","dnsAlias":"alias.example.net"}`, "team": "web"}, true)
	legacy := add("legacy", map[string]string{"Issuer": "Acmebot", "Endpoint": "acme-staging-v02.api.letsencrypt.org", "DnsProvider": "Cloudflare"}, false)
	add("by-hand", map[string]string{"owner": "someone"}, false)

	adopted, skipped, err := k.ListAcmebot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 0 {
		t.Errorf("skipped = %v", skipped)
	}
	if len(adopted) != 2 {
		t.Fatalf("adopted %d certificates, want modern and legacy", len(adopted))
	}
	got := map[string]azkv.Adopted{}
	for _, a := range adopted {
		got[a.Version.Name] = a
	}
	wantSpecs := map[string]certificate.Spec{
		"modern": {Name: "modern", DNSNames: []string{"modern.example.test"}, DNSProviderName: "Azure DNS",
			KeyType: "EC", KeyCurveName: "P-256", ReuseKey: true, DNSAlias: "alias.example.net", Tags: map[string]string{"team": "web"}},
		"legacy": {Name: "legacy", DNSNames: []string{"legacy.example.test"}, DNSProviderName: "Cloudflare",
			KeyType: "EC", KeyCurveName: "P-256"},
	}
	for name, want := range wantSpecs {
		if diff := cmp.Diff(want, got[name].Version.Spec); diff != "" {
			t.Errorf("%s spec (-want +got):\n%s", name, diff)
		}
	}
	vaulttest.Equal(t, vaulttest.Options{}, got["modern"].Version, modern)
	vaulttest.Equal(t, vaulttest.Options{}, got["legacy"].Version, legacy)
	if e := got["legacy"].Version.ACMEEndpoint; e != "https://acme-staging-v02.api.letsencrypt.org/directory" {
		t.Errorf("legacy endpoint = %q", e)
	}
}

func TestCertificateID(t *testing.T) {
	t.Parallel()
	// RFC 9773 section 4.1's example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4
	// and serial 00:87:65:43:21 give aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.
	aki, _ := base64.RawURLEncoding.DecodeString("aYhba4dGQEHhs3uEe6CuLN4ByNQ")
	leaf := &x509.Certificate{AuthorityKeyId: aki, SerialNumber: new(big.Int).SetBytes([]byte{0x87, 0x65, 0x43, 0x21})}
	if got, want := azkv.CertificateID(leaf), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"; got != want {
		t.Errorf("CertificateID = %s, want %s", got, want)
	}
}
