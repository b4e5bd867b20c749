// Package certificate holds what a managed certificate is: the settings it is
// issued with (Spec), the rules its DNS names and its certificate name follow,
// and the facts read from an issued version.
package certificate

// Key types accepted in Spec.KeyType.
const (
	KeyTypeRSA = "RSA"
	KeyTypeEC  = "EC"
)

// Spec is what a certificate is issued with. It is stored with the
// certificate and reused, unchanged, on every renewal.
type Spec struct {
	// Name is the certificate name: ^[0-9A-Za-z-]{1,127}$.
	Name string `json:"name"`
	// DNSNames are normalised names (lowercase ASCII, punycode, no trailing
	// dot), in the order requested; the first is the subject CN.
	DNSNames []string `json:"dnsNames"`
	// DNSProviderName is the configured provider that holds the zones; empty
	// means "the provider whose zone matches every name".
	DNSProviderName string `json:"dnsProviderName,omitempty"`
	KeyType         string `json:"keyType"`
	// KeySize is set when KeyType is RSA.
	KeySize int `json:"keySize,omitempty"`
	// KeyCurveName is set when KeyType is EC: P-256, P-384 or P-521.
	KeyCurveName string `json:"keyCurveName,omitempty"`
	ReuseKey     bool   `json:"reuseKey,omitempty"`
	// DNSAlias is the CNAME-delegation target: records for every name are
	// written at _acme-challenge.<DNSAlias>.
	DNSAlias string            `json:"dnsAlias,omitempty"`
	Profile  string            `json:"profile,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	// Destinations names the configured destinations the certificate is
	// delivered to besides the built-in store; nil means the configured
	// defaults at the time of each delivery, empty means none.
	Destinations []string `json:"destinations"`
	// CA names the certificate authorities to try, in order; empty means
	// the configured defaultCAs.
	CA []string `json:"ca,omitempty"`
	// PreferredChain is the common name of the top issuer of the chain to
	// download when the CA offers alternate chains; empty means the CA's
	// default chain.
	PreferredChain string `json:"preferredChain,omitempty"`
}
