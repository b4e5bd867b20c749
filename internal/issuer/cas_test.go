package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// MAC keys Pebble is configured with (base64url, unpadded).
var eabKeys = map[string]string{
	"kid-256": base64.RawURLEncoding.EncodeToString([]byte("eab-mac-key-for-hs256-testing-32")),
	"kid-384": base64.RawURLEncoding.EncodeToString([]byte("eab-mac-key-for-hs384-testing-of-48-bytes-long!!")),
	"kid-512": base64.RawURLEncoding.EncodeToString([]byte("eab-mac-key-for-hs512-testing-of-64-bytes-long-enough-for-it!!!!")),
}

func TestExternalAccountBinding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{ExternalAccountBindingRequired: true, ExternalAccountMACKeys: eabKeys})
	issuerWith := func(eab *EAB) *Issuer {
		return New(Config{Name: "eab", DirectoryURL: e.pebble.DirectoryURL, HTTPClient: e.pebble.HTTPClient(), EAB: eab},
			newMemAccounts())
	}

	dir, err := issuerWith(nil).Directory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !dir.Meta.ExternalAccountRequired {
		t.Fatal("Pebble's directory does not say externalAccountRequired")
	}

	t.Run("none configured", func(t *testing.T) {
		t.Parallel()
		_, err := issuerWith(nil).Obtain(t.Context(), Request{Names: []string{"noeab.example.test"}, KeyType: "EC"}, e.solver(), nil)
		if !errors.Is(err, ErrEABRequired) || FailoverReason(err) != "requires an External Account Binding" {
			t.Errorf("Obtain without EAB = %v (failover %q); want ErrEABRequired", err, FailoverReason(err))
		}
	})
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			kid := "kid-" + strings.TrimPrefix(alg, "HS")
			iss := issuerWith(&EAB{KeyID: kid, HMACKey: secret.String(eabKeys[kid]), Algorithm: alg})
			if _, err := iss.Obtain(t.Context(), Request{Names: []string{strings.ToLower(alg) + ".example.test"}, KeyType: "EC"}, e.solver(), nil); err != nil {
				t.Fatalf("Obtain with EAB %s: %v", alg, err)
			}
		})
	}
	t.Run("wrong MAC key", func(t *testing.T) {
		t.Parallel()
		wrong := base64.RawURLEncoding.EncodeToString([]byte("not-the-mac-key-pebble-knows-32b"))
		iss := issuerWith(&EAB{KeyID: "kid-256", HMACKey: secret.String(wrong)})
		_, err := iss.AccountURI(t.Context())
		pe, ok := errors.AsType[*ProblemError](err)
		if !ok || pe.Type == "" || !strings.Contains(err.Error(), "registering ACME account") {
			t.Errorf("registration with a wrong MAC key = %v; want the CA's problem", err)
		}
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("error %q holds the MAC key", err)
		}
	})
}

func TestPreferredChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{AlternateRoots: 1})
	iss := e.issuer(newMemAccounts())
	rootCN := func(n int) string {
		t.Helper()
		raw, err := e.pebble.Root(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(raw)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c.Subject.CommonName
	}
	defaultRoot, altRoot := rootCN(0), rootCN(1)
	if defaultRoot == altRoot {
		t.Fatalf("both roots are %q", defaultRoot)
	}
	tests := []struct {
		name      string
		preferred string
		want      string
	}{
		{name: "none asked", preferred: "", want: defaultRoot},
		{name: "the alternate", preferred: altRoot, want: altRoot},
		{name: "the alternate, other case", preferred: strings.ToUpper(altRoot), want: altRoot},
		{name: "the default", preferred: defaultRoot, want: defaultRoot},
		{name: "no such root", preferred: "ISRG Root X9", want: defaultRoot},
	}
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := "chain" + string(rune('a'+n)) + ".example.test"
			cert, err := iss.Obtain(t.Context(), Request{Names: []string{name}, KeyType: "EC", PreferredChain: tt.preferred}, e.solver(), nil)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			top, ok := topIssuer(cert.ChainPEM)
			if !ok || top != tt.want {
				t.Errorf("top issuer of the chain = %q, want %q", top, tt.want)
			}
		})
	}
}

// revokeRecorder records how the revokeCert requests it sees are signed.
type revokeRecorder struct {
	base http.RoundTripper

	mu     sync.Mutex
	signed []string // "jwk" or "kid"
}

func (r *revokeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.Contains(req.URL.Path, "revoke") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var jws struct{ Protected string }
		_ = json.Unmarshal(body, &jws)
		raw, _ := base64.RawURLEncoding.DecodeString(jws.Protected)
		var hdr map[string]any
		_ = json.Unmarshal(raw, &hdr)
		kind := "kid"
		if _, ok := hdr["jwk"]; ok {
			kind = "jwk"
		}
		r.mu.Lock()
		r.signed = append(r.signed, kind)
		r.mu.Unlock()
	}
	return r.base.RoundTrip(req)
}

func (r *revokeRecorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.signed) == 0 {
		return ""
	}
	return r.signed[len(r.signed)-1]
}

func TestRevocationReasons(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	client := e.pebble.HTTPClient()
	rec := &revokeRecorder{base: client.Transport}
	client.Transport = rec
	iss := New(Config{Name: "pebble", DirectoryURL: e.pebble.DirectoryURL, HTTPClient: client}, newMemAccounts())

	tests := []struct {
		name       string
		reason     int
		keyType    string
		curve      string
		withKey    bool
		wantSigned string
	}{
		{name: "unspecified", reason: ReasonUnspecified, keyType: "EC", wantSigned: "kid"},
		{name: "keyCompromise with the certificate's EC P-256 key", reason: ReasonKeyCompromise, keyType: "EC", withKey: true, wantSigned: "jwk"},
		{name: "keyCompromise with the certificate's EC P-384 key", reason: ReasonKeyCompromise, keyType: "EC", curve: "P-384", withKey: true, wantSigned: "jwk"},
		{name: "keyCompromise with the certificate's EC P-521 key", reason: ReasonKeyCompromise, keyType: "EC", curve: "P-521", withKey: true, wantSigned: "jwk"},
		{name: "keyCompromise with the certificate's RSA key", reason: ReasonKeyCompromise, keyType: "RSA", withKey: true, wantSigned: "jwk"},
		{name: "keyCompromise without the key", reason: ReasonKeyCompromise, keyType: "EC", wantSigned: "kid"},
		{name: "affiliationChanged", reason: ReasonAffiliationChanged, keyType: "EC", withKey: true, wantSigned: "kid"},
		{name: "superseded", reason: ReasonSuperseded, keyType: "RSA", wantSigned: "kid"},
		{name: "cessationOfOperation", reason: ReasonCessationOfOperation, keyType: "EC", wantSigned: "kid"},
	}
	for n, tt := range tests {
		// Sequential: the recorder's last entry belongs to this case.
		name := "reason" + string(rune('a'+n)) + ".example.test"
		cert, err := iss.Obtain(t.Context(), Request{Names: []string{name}, KeyType: tt.keyType, Curve: tt.curve}, e.solver(), nil)
		if err != nil {
			t.Fatalf("%s: Obtain: %v", tt.name, err)
		}
		key := cert.Key
		if !tt.withKey {
			key = nil
		}
		if err := iss.RevokeCertificate(t.Context(), cert.Leaf.Raw, key, tt.reason); err != nil {
			t.Errorf("%s: RevokeCertificate: %v", tt.name, err)
			continue
		}
		got, err := e.pebble.CertRevocation(t.Context(), cert.Leaf.SerialNumber.Text(16))
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "Revoked" || got.Reason == nil || *got.Reason != tt.reason {
			t.Errorf("%s: Pebble holds %+v, want Revoked with reason %d", tt.name, got, tt.reason)
		}
		if s := rec.last(); s != tt.wantSigned {
			t.Errorf("%s: revocation signed by %q, want %q", tt.name, s, tt.wantSigned)
		}
	}

	t.Run("with a key that is not the certificate's", func(t *testing.T) {
		cert, err := iss.Obtain(t.Context(), Request{Names: []string{"otherkey.example.test"}, KeyType: "EC"}, e.solver(), nil)
		if err != nil {
			t.Fatal(err)
		}
		other, err := GenerateKey("EC", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := iss.RevokeWithKey(t.Context(), cert.Leaf.Raw, other, ReasonKeyCompromise); err == nil ||
			!strings.Contains(err.Error(), "not the certificate's key") {
			t.Errorf("RevokeWithKey with another key = %v", err)
		}
		if err := iss.RevokeWithKey(t.Context(), cert.Leaf.Raw, cert.Key, 7); err == nil {
			t.Error("reason 7 accepted")
		}
		if err := iss.RevokeWithKey(t.Context(), cert.Leaf.Raw, cert.Key, ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		err = iss.RevokeWithKey(t.Context(), cert.Leaf.Raw, cert.Key, ReasonKeyCompromise)
		if pe, ok := errors.AsType[*ProblemError](err); !ok || pe.Type != acme.AlreadyRevokedErrorType {
			t.Errorf("second RevokeWithKey = %v, want the CA's alreadyRevoked", err)
		}
	})
}

func TestRolloverAndContacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	store := newMemAccounts()
	first := e.issuer(store)
	// A second process on the same store (another replica).
	second := e.issuer(store)
	uri, err := first.AccountURI(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Obtain(t.Context(), Request{Names: []string{"roll1.example.test"}, KeyType: "EC"}, e.solver(), nil); err != nil {
		t.Fatal(err)
	}
	before, _ := store.Account(t.Context(), e.pebble.DirectoryURL)

	got, err := first.Rollover(t.Context())
	if err != nil {
		t.Fatalf("Rollover: %v", err)
	}
	after, _ := store.Account(t.Context(), e.pebble.DirectoryURL)
	if got != uri || after.URI != uri {
		t.Errorf("account URI changed: %s, then %s (stored %s)", uri, got, after.URI)
	}
	if before.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(after.Key.Public()) {
		t.Error("the stored key did not change")
	}
	if _, err := first.Obtain(t.Context(), Request{Names: []string{"roll2.example.test"}, KeyType: "EC"}, e.solver(), nil); err != nil {
		t.Errorf("Obtain after rollover: %v", err)
	}
	// The second process still signs with the old key; it picks up the new
	// one from the store instead of registering another account.
	if _, err := second.Obtain(t.Context(), Request{Names: []string{"roll3.example.test"}, KeyType: "EC"}, e.solver(), nil); err != nil {
		t.Errorf("Obtain by the other process after rollover: %v", err)
	}
	if u, _ := second.AccountURI(t.Context()); u != uri {
		t.Errorf("the other process uses account %s, want %s", u, uri)
	}

	// Contacts changed in the configuration reach the CA on first use.
	changed := New(Config{DirectoryURL: e.pebble.DirectoryURL, HTTPClient: e.pebble.HTTPClient(),
		Contacts: []string{"ops@example.test", "mailto:security@example.test"}}, store)
	s, err := changed.session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mailto:ops@example.test", "mailto:security@example.test"}
	atCA, err := s.core.Accounts.Get(t.Context(), uri)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, atCA.Contact); diff != "" {
		t.Errorf("contacts at the CA (-want +got):\n%s", diff)
	}
	stored, _ := store.Account(t.Context(), e.pebble.DirectoryURL)
	if diff := cmp.Diff(want, stored.Contacts); diff != "" {
		t.Errorf("stored contacts (-want +got):\n%s", diff)
	}
}

func TestFailoverReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{BlockedDomains: []string{"blocked.test"}})
	html := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
	}))
	t.Cleanup(html.Close)

	tests := []struct {
		name   string
		iss    *Issuer
		req    Request
		solver func() *testSolver
		want   string
		wantIn string
	}{
		{
			name: "unreachable", want: "unreachable", wantIn: "127.0.0.1:1",
			iss: New(Config{DirectoryURL: "https://127.0.0.1:1/dir"}, newMemAccounts()),
			req: Request{Names: []string{"x.example.test"}, KeyType: "EC"},
		},
		{
			name: "5xx that is not a problem document", want: "server error", wantIn: "HTTP 502 Bad Gateway: <html><body>502 Bad Gateway</body></html>",
			iss: New(Config{DirectoryURL: html.URL + "/dir", HTTPClient: html.Client()}, newMemAccounts()),
			req: Request{Names: []string{"x.example.test"}, KeyType: "EC"},
		},
		{
			name: "names refused by policy", want: "refused the names", wantIn: acme.RejectedIdentifierErrorType,
			iss: e.issuer(newMemAccounts()),
			req: Request{Names: []string{"www.blocked.test"}, KeyType: "EC"},
		},
		{
			name: "profile not offered", want: "does not offer the profile", wantIn: `profile "tlsserver"`,
			iss: e.issuer(newMemAccounts()),
			req: Request{Names: []string{"profile.example.test"}, KeyType: "EC", Profile: "tlsserver"},
		},
		{
			name: "wrong TXT record: another CA sees the same", want: "", wantIn: acme.UnauthorizedErrorType,
			iss:    e.issuer(newMemAccounts()),
			req:    Request{Names: []string{"wrongtxt.example.test"}, KeyType: "EC"},
			solver: func() *testSolver { s := e.solver(); s.corrupt = true; return s },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			solver := e.solver()
			if tt.solver != nil {
				solver = tt.solver()
			}
			_, err := tt.iss.Obtain(t.Context(), tt.req, solver, nil)
			if err == nil {
				t.Fatal("Obtain succeeded")
			}
			if got := FailoverReason(err); got != tt.want {
				t.Errorf("FailoverReason(%v) = %q, want %q", err, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not contain %q", err, tt.wantIn)
			}
			if pe, ok := errors.AsType[*ProblemError](err); !ok || pe.Step == "" {
				t.Errorf("error %v is not a *ProblemError naming its step", err)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := e.issuer(newMemAccounts()).Obtain(ctx, Request{Names: []string{"c.example.test"}, KeyType: "EC"}, e.solver(), nil)
		if got := FailoverReason(err); got != "" {
			t.Errorf("FailoverReason of a cancelled Obtain (%v) = %q, want none", err, got)
		}
	})
	t.Run("directory 5xx", func(t *testing.T) {
		t.Parallel()
		_, err := New(Config{DirectoryURL: html.URL + "/dir", HTTPClient: html.Client()}, newMemAccounts()).FetchDirectory(t.Context())
		if got := FailoverReason(err); got != "server error" {
			t.Errorf("FailoverReason(%v) = %q, want server error", err, got)
		}
	})
}

func TestPickChain(t *testing.T) {
	t.Parallel()
	chain := func(issuerCN string) []byte {
		// Only the issuer CN of the last certificate matters; a real
		// certificate keeps the parsing honest.
		return pemCertWithIssuer(t, issuerCN)
	}
	chains := map[string][]byte{
		"https://ca/cert/1":             chain("Root A"),
		"https://ca/cert/1/alternate/2": chain("Root C"),
		"https://ca/cert/1/alternate/1": chain("Root B"),
		"https://ca/cert/1/alternate/3": []byte("not PEM"),
	}
	tests := []struct {
		preferred string
		want      string
		wantOK    bool
	}{
		{"Root A", "https://ca/cert/1", true},
		{"root b", "https://ca/cert/1/alternate/1", true},
		{" Root C ", "https://ca/cert/1/alternate/2", true},
		{"Root D", "https://ca/cert/1", false},
	}
	for _, tt := range tests {
		got, ok := pickChain("https://ca/cert/1", chains, tt.preferred)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("pickChain(%q) = %q, %v; want %q, %v", tt.preferred, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestSet(t *testing.T) {
	t.Parallel()
	a := New(Config{Name: "a", DirectoryURL: "https://a/dir"}, newMemAccounts())
	b := New(Config{Name: "b", DirectoryURL: "https://b/dir"}, newMemAccounts())
	set, err := NewSet([]*Issuer{a, b}, []string{"b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	names := func(is []*Issuer) []string {
		var out []string
		for _, i := range is {
			out = append(out, i.Name())
		}
		return out
	}
	for _, tt := range []struct {
		in   []string
		want []string
	}{
		{nil, []string{"b", "a"}},
		{[]string{"a"}, []string{"a"}},
		{[]string{"a", "b", "a"}, []string{"a", "b"}},
	} {
		got, err := set.Candidates(tt.in)
		if err != nil || !cmp.Equal(names(got), tt.want) {
			t.Errorf("Candidates(%v) = %v, %v; want %v", tt.in, names(got), err, tt.want)
		}
	}
	if _, err := set.Candidates([]string{"a", "z"}); err == nil || err.Error() != `the CA "z" is not configured (configured: a, b)` {
		t.Errorf("Candidates with an unknown name = %v", err)
	}
	if set.Default() != b {
		t.Errorf("Default() = %s, want b", set.Default().Name())
	}
	for _, tt := range []struct{ name, url, want string }{
		{"a", "https://a/dir", "a"}, {"", "https://b/dir", "b"}, {"renamed", "https://a/dir", "a"}, {"b", "https://moved/dir", ""},
	} {
		got, err := set.ForVersion(tt.name, tt.url)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ForVersion(%q, %q) = %s, want an error", tt.name, tt.url, got.Name())
			}
			continue
		}
		if err != nil || got.Name() != tt.want {
			t.Errorf("ForVersion(%q, %q) = %v, %v; want %s", tt.name, tt.url, got, err, tt.want)
		}
	}
	if _, err := NewSet([]*Issuer{a, a}, []string{"x"}); err == nil ||
		!strings.Contains(err.Error(), `CA name "a" is used more than once`) || !strings.Contains(err.Error(), `default CA "x" is not configured`) {
		t.Errorf("NewSet with problems = %v", err)
	}
}

// pemCertWithIssuer returns a PEM self-signed certificate whose subject and
// issuer common name is cn.
func pemCertWithIssuer(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := GenerateKey("EC", 0, "P-256")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestFailoverReasonOfProblems(t *testing.T) {
	t.Parallel()
	problem := func(typ string, status int) error {
		return fail(operation.StepOrdering, "creating order", &acme.ProblemDetails{Type: typ, HTTPStatus: status, Detail: "x"})
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"rate limited", &acme.RateLimitedError{ProblemDetails: &acme.ProblemDetails{Type: acme.RateLimitedErrorType, HTTPStatus: 429}}, "rate limited"},
		{"rate limited, wrapped", problem(acme.RateLimitedErrorType, 429), "rate limited"},
		{"server internal", problem(acme.ServerInternalErrorType, 500), "server error"},
		{"503 of another type", problem(acme.MalformedErrorType, 503), "server error"},
		{"rejected identifier", problem(acme.RejectedIdentifierErrorType, 400), "refused the names"},
		{"unsupported identifier", problem(acme.UnsupportedIdentifierErrorType, 400), "refused the names"},
		{"CAA at the CA", problem(acme.CaaErrorType, 403), "CAA forbids issuance"},
		{"invalid profile", problem(acme.InvalidProfileErrorType, 400), "does not offer the profile"},
		{"EAB required", problem(acme.ExternalAccountRequiredErrorType, 401), "requires an External Account Binding"},
		{"terms changed", problem(acme.UserActionRequiredErrorType, 403), "requires action on the account"},
		{"unauthorized", problem(acme.UnauthorizedErrorType, 403), ""},
		{"bad CSR", problem(acme.BadCSRErrorType, 400), ""},
		{"joined with a cleanup error", errors.Join(problem(acme.RateLimitedErrorType, 429), errors.New("removing DNS records: x")), "rate limited"},
		{"unreachable", &ProblemError{Op: "x", Err: &UnreachableError{URL: "https://ca/dir", Err: errors.New("connection refused")}}, "unreachable"},
		{"cancelled while unreachable", &ProblemError{Op: "x", Err: &UnreachableError{URL: "https://ca/dir", Err: context.Canceled}}, ""},
		{"plain error", errors.New("disk full"), ""},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		if got := FailoverReason(tt.err); got != tt.want {
			t.Errorf("%s: FailoverReason(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}
