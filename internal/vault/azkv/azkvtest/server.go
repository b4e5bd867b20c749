// Package azkvtest holds an in-memory HTTPS server that answers, for tests,
// as Azure Key Vault's certificate and secret endpoints (api-version 7.5 and
// later, https://learn.microsoft.com/rest/api/keyvault/) and Microsoft Entra
// ID's token endpoints do: the challenge flow (401 with WWW-Authenticate:
// Bearer authorization=..., resource=...), client credentials with a secret
// or a federated token, certificate import, get, list, list versions and
// update, and the secret that holds each version's PFX. Every request is
// checked against the documented shapes; a request that breaks them fails
// the test.
//
// The server answers for any host name: Client returns an HTTP client that
// dials every connection to it and trusts its certificate, so that the SDK
// talks to https://<name>.vault.azure.net and https://login.microsoftonline.com
// exactly as in production.
package azkvtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // Key Vault's x5t is a SHA-1 thumbprint
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Resource is the Key Vault resource the challenge names.
const Resource = "https://vault.azure.net"

// Server is a fake Key Vault and Entra ID. Configure it before the first
// request; its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	// VaultHost is the vault's host name (default certkeeper.vault.azure.net).
	VaultHost string
	// TenantID, ClientID and ClientSecret are the credentials the token
	// endpoint accepts; FederatedToken, when set, is accepted as a client
	// assertion (workload identity).
	TenantID, ClientID, ClientSecret, FederatedToken string
	// PageSize is how many items a list answers per page (default 25).
	PageSize int

	t      testing.TB
	caPool *x509.CertPool

	mu         sync.Mutex
	tokens     map[string]bool
	certs      map[string][]*certVersion // name → versions, oldest first
	challenges int
	imports    []Import
	errs       []string
}

type certVersion struct {
	id       string
	der      []byte
	chain    [][]byte
	key      any
	tags     map[string]string
	policy   map[string]any
	created  time.Time
	updated  time.Time
	enabled  bool
	notAfter time.Time
	notBef   time.Time
}

// Import is one import request as the server received it.
type Import struct {
	Name     string
	PFX      []byte
	Password string
	Policy   map[string]any
	Tags     map[string]string
	// Leaf and Chain are what the PFX held.
	Leaf  *x509.Certificate
	Chain []*x509.Certificate
}

// Start starts the server; it stops when the test ends, and fails the test
// when a request broke the documented contract.
func Start(t testing.TB) *Server {
	s := &Server{
		VaultHost: "certkeeper.vault.azure.net", TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
		ClientID: "0a1b2c3d-0000-4000-8000-000000000001", ClientSecret: "client-secret-for-tests",
		PageSize: 25, t: t, tokens: map[string]bool{}, certs: map[string][]*certVersion{},
	}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	cert, pool := serverCertificate(t)
	s.caPool = pool
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.StartTLS()
	t.Cleanup(func() {
		s.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.errs {
			t.Errorf("fake Key Vault: %s", e)
		}
	})
	return s
}

// VaultURL is the vault's URL, https://<VaultHost>.
func (s *Server) VaultURL() string { return "https://" + s.VaultHost }

// Client returns an HTTP client that reaches this server for every host
// name and trusts its certificate.
func (s *Server) Client() *http.Client {
	addr := s.Listener.Addr().String()
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	return &http.Client{Transport: transport, Timeout: 30 * time.Second}
}

// Challenges counts the 401 challenges answered.
func (s *Server) Challenges() int { s.mu.Lock(); defer s.mu.Unlock(); return s.challenges }

// Imports returns the import requests received, in order.
func (s *Server) Imports() []Import {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Import(nil), s.imports...)
}

// Tags returns the tags of the named certificate's newest version.
func (s *Server) Tags(name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.certs[name]
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1].tags
}

// Versions counts the named certificate's versions.
func (s *Server) Versions(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.certs[name])
}

// Add stores a certificate version as Acmebot (or a person) would have
// made it: leaf and chain DER, its private key, tags and the policy's
// dnsNames and reuse_key.
func (s *Server) Add(name string, leaf *x509.Certificate, chain []*x509.Certificate, key any,
	tags map[string]string, reuseKey bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.newVersion(leaf, chain, key, tags)
	names := make([]any, len(leaf.DNSNames))
	for i, n := range leaf.DNSNames {
		names[i] = n
	}
	v.policy["key_props"].(map[string]any)["reuse_key"] = reuseKey
	v.policy["x509_props"] = map[string]any{"subject": "CN=" + leaf.Subject.CommonName,
		"sans": map[string]any{"dns_names": names}, "validity_months": 3}
	s.certs[name] = append(s.certs[name], v)
}

func (s *Server) newVersion(leaf *x509.Certificate, chain []*x509.Certificate, key any, tags map[string]string) *certVersion {
	now := time.Now().UTC().Truncate(time.Second)
	v := &certVersion{id: randomHex(16), der: leaf.Raw, key: key, tags: tags, created: now, updated: now,
		enabled: true, notAfter: leaf.NotAfter, notBef: leaf.NotBefore,
		policy: map[string]any{
			"key_props":        map[string]any{"exportable": true, "kty": keyType(key), "reuse_key": false},
			"secret_props":     map[string]any{"contentType": "application/x-pkcs12"},
			"lifetime_actions": []any{map[string]any{"trigger": map[string]any{"lifetime_percentage": 80}, "action": map[string]any{"action_type": "EmailContacts"}}},
			"issuer":           map[string]any{"name": "Unknown"},
		}}
	for _, c := range chain {
		v.chain = append(v.chain, c.Raw)
	}
	return v
}

func keyType(key any) string {
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		return "EC"
	}
	return "RSA"
}

func (s *Server) failf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// kvError answers as Key Vault answers an error.
func kvError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	switch host {
	case "login.microsoftonline.com":
		s.entra(w, r)
	case s.VaultHost:
		s.vault(w, r)
	default:
		s.failf("request for unknown host %q: %s %s", r.Host, r.Method, r.URL)
		http.Error(w, "unknown host", http.StatusMisdirectedRequest)
	}
}

// entra answers Entra ID's discovery and token endpoints.
func (s *Server) entra(w http.ResponseWriter, r *http.Request) {
	base := "https://login.microsoftonline.com/"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/common/discovery/instance":
		writeJSON(w, http.StatusOK, map[string]any{
			"tenant_discovery_endpoint": base + s.TenantID + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata": []any{map[string]any{"preferred_network": "login.microsoftonline.com",
				"preferred_cache": "login.windows.net",
				"aliases":         []string{"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}}},
		})
	case r.Method == http.MethodGet && r.URL.Path == "/"+s.TenantID+"/v2.0/.well-known/openid-configuration":
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":                        base + s.TenantID + "/oauth2/v2.0/token",
			"authorization_endpoint":                base + s.TenantID + "/oauth2/v2.0/authorize",
			"issuer":                                base + s.TenantID + "/v2.0",
			"jwks_uri":                              base + s.TenantID + "/discovery/v2.0/keys",
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"tenant_region_scope":                   "NA",
			"cloud_instance_name":                   "microsoftonline.com",
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+s.TenantID+"/oauth2/v2.0/token":
		s.token(w, r)
	default:
		s.failf("Entra ID: unexpected %s %s", r.Method, r.URL)
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "invalid_request"})
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.failf("token request: %v", err)
	}
	f := r.PostForm
	oauthError := func(code, desc string) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": code, "error_description": desc,
			"error_codes": []int{7000215}, "timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z")})
	}
	if f.Get("grant_type") != "client_credentials" {
		s.failf("token request with grant_type %q", f.Get("grant_type"))
	}
	// MSAL adds the OpenID scopes to the resource's .default scope.
	if !slices.Contains(strings.Fields(f.Get("scope")), Resource+"/.default") {
		s.failf("token request for scope %q, want %s/.default", f.Get("scope"), Resource)
	}
	if f.Get("client_id") != s.ClientID {
		oauthError("unauthorized_client", "AADSTS700016: Application not found in the directory.")
		return
	}
	switch {
	case f.Get("client_secret") != "":
		if f.Get("client_secret") != s.ClientSecret {
			oauthError("invalid_client", "AADSTS7000215: Invalid client secret provided.")
			return
		}
	case f.Get("client_assertion") != "":
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			s.FederatedToken == "" || f.Get("client_assertion") != s.FederatedToken {
			oauthError("invalid_client", "AADSTS700211: No matching federated identity record found.")
			return
		}
	default:
		oauthError("invalid_request", "AADSTS7000218: The request body must contain client_assertion or client_secret.")
		return
	}
	tok := "kv-access-" + randomHex(16)
	s.mu.Lock()
	s.tokens[tok] = true
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599,
		"ext_expires_in": 3599, "access_token": tok})
}

// vault answers Key Vault's certificate and secret endpoints.
func (s *Server) vault(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	ok := strings.HasPrefix(auth, "Bearer ") && s.tokens[strings.TrimPrefix(auth, "Bearer ")]
	s.mu.Unlock()
	if !ok {
		if auth != "" {
			s.failf("%s %s with an unknown token", r.Method, r.URL.Path)
		}
		if r.ContentLength > 0 {
			s.failf("%s %s: the challenge request carried a body", r.Method, r.URL.Path)
		}
		s.mu.Lock()
		s.challenges++
		s.mu.Unlock()
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://login.microsoftonline.com/%s", resource="%s"`, s.TenantID, Resource))
		kvError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		s.failf("%s %s without api-version", r.Method, r.URL.Path)
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case parts[0] == "certificates" && len(parts) == 1 && r.Method == http.MethodGet:
		s.listCertificates(w, r)
	case parts[0] == "certificates" && len(parts) == 3 && parts[2] == "import" && r.Method == http.MethodPost:
		s.importCertificate(w, r, parts[1])
	case parts[0] == "certificates" && len(parts) == 3 && parts[2] == "versions" && r.Method == http.MethodGet:
		s.listVersions(w, r, parts[1])
	case parts[0] == "certificates" && (len(parts) == 2 || len(parts) == 3) && r.Method == http.MethodGet:
		s.getCertificate(w, parts[1], at(parts, 2))
	case parts[0] == "certificates" && len(parts) == 3 && r.Method == http.MethodPatch:
		s.updateCertificate(w, r, parts[1], parts[2])
	case parts[0] == "secrets" && (len(parts) == 2 || len(parts) == 3) && r.Method == http.MethodGet:
		s.getSecret(w, parts[1], at(parts, 2))
	default:
		s.failf("unexpected %s %s", r.Method, r.URL.Path)
		kvError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: "+r.URL.Path)
	}
}

func at(parts []string, i int) string {
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

func (s *Server) versionLocked(name, version string) *certVersion {
	vs := s.certs[name]
	if len(vs) == 0 {
		return nil
	}
	if version == "" {
		return vs[len(vs)-1]
	}
	for _, v := range vs {
		if v.id == version {
			return v
		}
	}
	return nil
}

func notFound(w http.ResponseWriter, name string) {
	kvError(w, http.StatusNotFound, "CertificateNotFound", fmt.Sprintf("A certificate with (name/id) %s was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", name))
}

func (s *Server) attributes(v *certVersion) map[string]any {
	return map[string]any{"enabled": v.enabled, "nbf": v.notBef.Unix(), "exp": v.notAfter.Unix(),
		"created": v.created.Unix(), "updated": v.updated.Unix(), "recoveryLevel": "Recoverable+Purgeable",
		"recoverableDays": 90}
}

func thumbprint(der []byte) string {
	sum := sha1.Sum(der) //nolint:gosec // see import
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// bundle is a CertificateBundle.
func (s *Server) bundle(name string, v *certVersion) map[string]any {
	base := s.VaultURL()
	policy := map[string]any{"id": base + "/certificates/" + name + "/policy"}
	for k, val := range v.policy {
		policy[k] = val
	}
	policy["attributes"] = map[string]any{"enabled": true, "created": v.created.Unix(), "updated": v.updated.Unix()}
	return map[string]any{
		"id": base + "/certificates/" + name + "/" + v.id, "kid": base + "/keys/" + name + "/" + v.id,
		"sid": base + "/secrets/" + name + "/" + v.id, "x5t": thumbprint(v.der),
		"cer": base64.StdEncoding.EncodeToString(v.der), "attributes": s.attributes(v), "policy": policy,
		"tags": v.tags,
	}
}

func (s *Server) getCertificate(w http.ResponseWriter, name, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.versionLocked(name, version)
	if v == nil {
		notFound(w, name)
		return
	}
	writeJSON(w, http.StatusOK, s.bundle(name, v))
}

// page answers one page of items, with nextLink when more follow.
func (s *Server) page(w http.ResponseWriter, r *http.Request, items []any) {
	skip := 0
	if tok := r.URL.Query().Get("$skiptoken"); tok != "" {
		fmt.Sscanf(tok, "%d", &skip)
	}
	end := min(skip+s.PageSize, len(items))
	out := map[string]any{"value": items[min(skip, len(items)):end], "nextLink": nil}
	if end < len(items) {
		q := url.Values{"api-version": {r.URL.Query().Get("api-version")}, "$skiptoken": {fmt.Sprint(end)}}
		out["nextLink"] = s.VaultURL() + r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	vs := s.certs[name]
	items := make([]any, 0, len(vs))
	for _, v := range vs {
		items = append(items, map[string]any{"id": s.VaultURL() + "/certificates/" + name + "/" + v.id,
			"x5t": thumbprint(v.der), "attributes": s.attributes(v), "tags": v.tags})
	}
	s.mu.Unlock()
	if len(items) == 0 {
		notFound(w, name)
		return
	}
	s.page(w, r, items)
}

func (s *Server) listCertificates(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.certs))
	for n := range s.certs {
		names = append(names, n)
	}
	sort.Strings(names)
	items := make([]any, 0, len(names))
	for _, n := range names {
		v := s.certs[n][len(s.certs[n])-1]
		items = append(items, map[string]any{"id": s.VaultURL() + "/certificates/" + n,
			"x5t": thumbprint(v.der), "attributes": s.attributes(v), "tags": v.tags})
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (s *Server) importCertificate(w http.ResponseWriter, r *http.Request, name string) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.failf("import %s with Content-Type %q", name, ct)
	}
	var body struct {
		Value      *string           `json:"value"`
		Pwd        *string           `json:"pwd"`
		Policy     map[string]any    `json:"policy"`
		Attributes map[string]any    `json:"attributes"`
		Tags       map[string]string `json:"tags"`
		Preserve   *bool             `json:"preserveCertOrder"`
	}
	if err := decodeStrict(r, &body); err != nil {
		s.failf("import %s: body %v", name, err)
		kvError(w, http.StatusBadRequest, "BadParameter", "The request body is invalid.")
		return
	}
	if body.Value == nil {
		kvError(w, http.StatusBadRequest, "BadParameter", "Property value is required.")
		return
	}
	raw, err := base64.StdEncoding.DecodeString(*body.Value)
	if err != nil {
		s.failf("import %s: value is not base64: %v", name, err)
		kvError(w, http.StatusBadRequest, "BadParameter", "The specified value is not a valid base64 string.")
		return
	}
	pwd := ""
	if body.Pwd != nil {
		pwd = *body.Pwd
	}
	key, leaf, chain, err := pkcs12.DecodeChain(raw, pwd)
	if err != nil {
		kvError(w, http.StatusBadRequest, "BadParameter", "Private key is not specified in the specified X.509 PEM certificate content. Please specify private key in the X.509 PEM certificate content.")
		return
	}
	if !publicKeyMatches(key, leaf) {
		kvError(w, http.StatusBadRequest, "BadParameter", "The private key does not match the certificate.")
		return
	}
	if kp, ok := body.Policy["key_props"].(map[string]any); ok {
		if kp["kty"] != keyType(key) {
			kvError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("The key type %v of the policy does not match the certificate's key.", kp["kty"]))
			return
		}
	}
	s.mu.Lock()
	v := s.newVersion(leaf, chain, key, body.Tags)
	if body.Policy != nil {
		for k, val := range body.Policy {
			v.policy[k] = val
		}
	}
	names := make([]any, len(leaf.DNSNames))
	for i, n := range leaf.DNSNames {
		names[i] = n
	}
	v.policy["x509_props"] = map[string]any{"subject": "CN=" + leaf.Subject.CommonName,
		"sans": map[string]any{"dns_names": names}, "validity_months": 3}
	if en, ok := body.Attributes["enabled"].(bool); ok {
		v.enabled = en
	}
	s.certs[name] = append(s.certs[name], v)
	s.imports = append(s.imports, Import{Name: name, PFX: raw, Password: pwd, Policy: body.Policy, Tags: body.Tags,
		Leaf: leaf, Chain: chain})
	out := s.bundle(name, v)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateCertificate(w http.ResponseWriter, r *http.Request, name, version string) {
	var body struct {
		Tags       map[string]string `json:"tags"`
		Attributes map[string]any    `json:"attributes"`
		Policy     map[string]any    `json:"policy"`
	}
	if err := decodeStrict(r, &body); err != nil {
		s.failf("update %s: body %v", name, err)
		kvError(w, http.StatusBadRequest, "BadParameter", "The request body is invalid.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.versionLocked(name, version)
	if v == nil {
		notFound(w, name)
		return
	}
	if body.Tags != nil {
		v.tags = body.Tags
	}
	if en, ok := body.Attributes["enabled"].(bool); ok {
		v.enabled = en
	}
	v.updated = time.Now().UTC()
	writeJSON(w, http.StatusOK, s.bundle(name, v))
}

// getSecret answers the secret Key Vault keeps beside a certificate
// version: its PFX, base64, without a password.
func (s *Server) getSecret(w http.ResponseWriter, name, version string) {
	s.mu.Lock()
	v := s.versionLocked(name, version)
	s.mu.Unlock()
	if v == nil {
		kvError(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name))
		return
	}
	leaf, _ := x509.ParseCertificate(v.der)
	var chain []*x509.Certificate
	for _, d := range v.chain {
		c, _ := x509.ParseCertificate(d)
		chain = append(chain, c)
	}
	pfx, err := pkcs12.Passwordless.Encode(v.key, leaf, chain, "")
	if err != nil {
		s.failf("encoding the PFX of %s: %v", name, err)
		kvError(w, http.StatusInternalServerError, "InternalError", "encoding failed")
		return
	}
	base := s.VaultURL()
	writeJSON(w, http.StatusOK, map[string]any{
		"value": base64.StdEncoding.EncodeToString(pfx), "contentType": "application/x-pkcs12",
		"id": base + "/secrets/" + name + "/" + v.id, "kid": base + "/keys/" + name + "/" + v.id, "managed": true,
		"attributes": map[string]any{"enabled": v.enabled, "nbf": v.notBef.Unix(), "exp": v.notAfter.Unix(),
			"created": v.created.Unix(), "updated": v.updated.Unix(), "recoveryLevel": "Recoverable+Purgeable"},
		"tags": v.tags,
	})
}

func publicKeyMatches(key any, leaf *x509.Certificate) bool {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(leaf.PublicKey)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serverCertificate makes a CA and a certificate from it for every host
// name the server answers.
func serverCertificate(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "azkvtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "azkvtest"},
		DNSNames:  []string{"*.vault.azure.net", "login.microsoftonline.com", "*.vault.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
