package azkv

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// The tags Key Vault Acmebot reads and writes on its certificates. Acmebot
// v5 writes one JSON tag, "Acmebot"; earlier versions wrote "Issuer"
// (always "Acmebot"), "Endpoint", "DnsProvider" and "DnsAlias", which v5
// still reads when the JSON tag is absent.
const (
	TagAcmebot        = "Acmebot"
	TagLegacyIssuer   = "Issuer"
	TagLegacyEndpoint = "Endpoint"
	TagLegacyProvider = "DnsProvider"
	TagLegacyAlias    = "DnsAlias"
	legacyIssuerValue = "Acmebot"
)

// Metadata is what the Acmebot tag holds. The JSON is written in this field
// order, without dnsAlias and certificateId when they are empty, as
// Acmebot's System.Text.Json serialiser writes it.
type Metadata struct {
	// Endpoint is the ACME CA's host name (acme-v02.api.letsencrypt.org).
	Endpoint string `json:"endpoint"`
	// DNSProvider is the display name of the DNS provider.
	DNSProvider string `json:"dnsProvider"`
	DNSAlias    string `json:"dnsAlias,omitempty"`
	// CertificateID is the ACME certificate identifier of the leaf (RFC 9773
	// section 4.1): base64url(authority key id) "." base64url(serial).
	CertificateID string `json:"certificateId,omitempty"`
	// Profile is the ACME profile, written by newer Acmebot releases; read
	// only.
	Profile string `json:"profile,omitempty"`
}

// Encode returns the Acmebot tag's value.
func (m Metadata) Encode() string {
	m.Profile = ""
	b, _ := json.Marshal(m) // a struct of strings always marshals
	return string(b)
}

// ReadMetadata returns the Acmebot metadata in tags: the JSON "Acmebot" tag,
// else the legacy tags when "Issuer" is present, as Acmebot reads them. ok
// is false when the certificate carries neither, so Acmebot did not issue
// it.
func ReadMetadata(tags map[string]*string) (m Metadata, ok bool) {
	get := func(key string) (string, bool) {
		for k, v := range tags {
			if strings.EqualFold(k, key) && v != nil {
				return *v, true
			}
		}
		return "", false
	}
	if raw, has := get(TagAcmebot); has && raw != "" {
		if err := json.Unmarshal([]byte(raw), &m); err == nil {
			m.Endpoint = normalizeEndpoint(m.Endpoint)
			return m, true
		}
	}
	if issuer, has := get(TagLegacyIssuer); has {
		m.Endpoint, _ = get(TagLegacyEndpoint)
		m.Endpoint = normalizeEndpoint(m.Endpoint)
		m.DNSProvider, _ = get(TagLegacyProvider)
		m.DNSAlias, _ = get(TagLegacyAlias)
		return m, issuer == legacyIssuerValue
	}
	return Metadata{}, false
}

// CustomTags returns the tags that are not Acmebot's own.
func CustomTags(tags map[string]*string) map[string]string {
	internal := []string{TagAcmebot}
	if _, ok := tags[TagAcmebot]; !ok {
		internal = append(internal, TagLegacyIssuer, TagLegacyEndpoint, TagLegacyProvider, TagLegacyAlias)
	}
	out := map[string]string{}
next:
	for k, v := range tags {
		for _, in := range internal {
			if strings.EqualFold(k, in) {
				continue next
			}
		}
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// normalizeEndpoint turns an absolute URL (legacy tags held the directory
// URL) into its host, as Acmebot does.
func normalizeEndpoint(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		return u.Hostname()
	}
	return s
}

// CertificateID returns the ACME certificate identifier of leaf (RFC 9773
// section 4.1), or "" when it has no authority key identifier.
func CertificateID(leaf *x509.Certificate) string {
	if len(leaf.AuthorityKeyId) == 0 || leaf.SerialNumber == nil {
		return ""
	}
	serial := leaf.SerialNumber.Bytes()
	if len(serial) == 0 || serial[0]&0x80 != 0 {
		// The DER INTEGER's content: a leading zero keeps it positive.
		serial = append([]byte{0}, serial...)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(leaf.AuthorityKeyId) + "." + enc.EncodeToString(serial)
}

// tagsFor returns the tags written with a version: the spec's own tags
// (trimmed, without one named Acmebot) and the Acmebot tag.
func tagsFor(custom map[string]string, m Metadata) map[string]*string {
	out := map[string]*string{}
	for k, v := range custom {
		k, v := strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" || strings.EqualFold(k, TagAcmebot) {
			continue
		}
		out[k] = &v
	}
	enc := m.Encode()
	out[TagAcmebot] = &enc
	return out
}

func sameTags(a, b map[string]*string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || (v == nil) != (w == nil) || v != nil && *v != *w {
			return false
		}
	}
	return true
}
