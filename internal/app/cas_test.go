package app_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// caDeps are BIND and four Pebbles: "first" is stopped, "second" offers an
// alternate chain, "refuser" refuses refused.test, "eab" requires an
// External Account Binding. Each has its own CAA identity.
type caDeps struct {
	bind                         *testenv.BIND
	first, second, refuser, eabs *testenv.Pebble
}

var testMACKey = base64.RawURLEncoding.EncodeToString([]byte("app-test-eab-mac-key-0123456789ab"))

func startCADeps(t *testing.T) caDeps {
	t.Helper()
	bind := testenv.StartBIND(t, testenv.BINDOptions{
		// The TLD is a zone too, so that CAA lookups walking up end in an
		// answer.
		Zones: []string{"example.test", "refused.test", "other.test", "test"},
		ExtraRecords: []string{
			`caa-allow.example.test. CAA 0 issue "ca-second.test"`,
			`caa-forbid.example.test. CAA 0 issue "ca-refuser.test"`,
			`caa-cname.example.test. CNAME caa-target.other.test.`,
			`caa-target.other.test. CAA 0 issue "ca-refuser.test"`,
			`caa-cname-ok.example.test. CNAME caa-allow.example.test.`,
			`_acme-challenge.dry-cname.example.test. CNAME _acme-challenge.elsewhere.other.test.`,
		},
	})
	first := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, CAAIdentities: []string{"ca-first.test"}})
	first.Stop()
	return caDeps{
		bind:  bind,
		first: first,
		second: testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, AlternateRoots: 1,
			CAAIdentities: []string{"ca-second.test"}}),
		refuser: testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, BlockedDomains: []string{"refused.test"},
			CAAIdentities: []string{"ca-refuser.test"}}),
		eabs: testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, ExternalAccountBindingRequired: true,
			ExternalAccountMACKeys: map[string]string{"kid-1": testMACKey}}),
	}
}

// config configures only cas (no acme.endpoint): first, second, refuser
// and eab, with defaultCAs [first, second].
func (d caDeps) config(t *testing.T, db string) config.Config {
	t.Helper()
	cfg := deps{bind: d.bind, pebble: d.second}.config(t, db)
	cfg.ACME = config.ACME{}
	ca := func(name string, p *testenv.Pebble) config.CA {
		// Pebble picks a profile at random when an order names none.
		return config.CA{Name: name, Endpoint: p.DirectoryURL, CABundle: p.CABundle, Contacts: []string{"admin@example.test"},
			Profile: "default"}
	}
	eab := ca("eab", d.eabs)
	eab.ExternalAccountBinding = &config.EAB{KeyID: "kid-1", HMACKey: secret.String(testMACKey), Algorithm: "HS256"}
	cfg.CAs = []config.CA{ca("first", d.first), ca("second", d.second), ca("refuser", d.refuser), eab}
	cfg.DefaultCAs = []string{"first", "second"}
	zones := []string{"example.test", "refused.test", "other.test"}
	cfg.DNS.Providers[0].Zones = zones
	cfg.Auth.APIKeys = []config.APIKey{{Name: "admin", Key: testKey, Roles: []string{"Certkeeper.Admin"}}}
	return cfg
}

// caService runs the service for a configuration with cas, handing it each
// CA's bundle.
func caService(t *testing.T, cfg config.Config) string {
	t.Helper()
	a, err := newApp(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, a)
}

func newApp(t *testing.T, cfg config.Config) (*app.App, error) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	key, _, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	bundles := map[string][]byte{}
	for _, ca := range cfg.CAs {
		b, err := os.ReadFile(ca.CABundle)
		if err != nil {
			t.Fatal(err)
		}
		bundles[ca.Name] = b
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return app.New(t.Context(), app.Options{Config: &cfg, MasterKey: key, CABundles: bundles, Version: "test", Logger: logger})
}

func run(t *testing.T, a *app.App) string {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "http://" + a.Addr().String()
}

// opView is what GET /api/operations/{id} shows.
type opView struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Steps  []struct {
		Name  string `json:"name"`
		CA    string `json:"ca"`
		Error string `json:"error"`
	} `json:"steps"`
}

// issueOp posts an issue request, waits for its end and returns the
// operation with its steps.
func issueOp(t *testing.T, base, path, body string) opView {
	t.Helper()
	resp := post(t, base+path, body)
	status, text := waitFor(t, resp)
	loc := resp.Header.Get("Location")
	id := loc[strings.LastIndex(loc, "/")+1:]
	r := do(t, http.MethodGet, base+"/api/operations/"+id, "")
	raw, _ := io.ReadAll(r.Body)
	var op opView
	if status == http.StatusOK {
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		return op
	}
	var p struct{ Operation opView }
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("operation ended with %d %s: %v", status, text, err)
	}
	return p.Operation
}

func mustSucceed(t *testing.T, op opView) {
	t.Helper()
	if op.Status != string(operation.StatusSucceeded) {
		t.Fatalf("operation %s: %s; steps %+v", op.Status, op.Error, op.Steps)
	}
}

// failoverStep returns the StepFailover step's CA and error.
func failoverStep(op opView) (ca, text string, ok bool) {
	for _, s := range op.Steps {
		if s.Name == string(operation.StepFailover) {
			return s.CA, s.Error, true
		}
	}
	return "", "", false
}

// download returns the leaf, the chain and the private key of the newest
// version of name.
func download(t *testing.T, base, name string) (*x509.Certificate, []*x509.Certificate, crypto.PublicKey) {
	t.Helper()
	r := do(t, http.MethodGet, base+"/api/certificates/"+name+"/download?format=pem", "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("download %s: %d", name, r.StatusCode)
	}
	raw, _ := io.ReadAll(r.Body)
	var certs []*x509.Certificate
	var pub crypto.PublicKey
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			pub = k.(crypto.Signer).Public()
		}
	}
	if len(certs) == 0 || pub == nil {
		t.Fatalf("download %s holds no certificate or key", name)
	}
	return certs[0], certs[1:], pub
}

func jsonBody(t *testing.T, r *http.Response, v any) {
	t.Helper()
	raw, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
}

// TestSeveralCAs issues through several CAs with failover, EAB, profiles,
// preferred chains, CAA pre-flight checks, revocation reasons, replace,
// accounts and dry runs, on both databases.
func TestSeveralCAs(t *testing.T) {
	t.Parallel()
	d := startCADeps(t)
	altRoot := rootCN(t, d.second, 1)
	eachDatabase(t, func(t *testing.T, db string) {
		base := caService(t, d.config(t, db))

		t.Run("first CA stopped: issued by the second, failover recorded", func(t *testing.T) {
			t.Parallel()
			op := issueOp(t, base, "/api/certificate", `{"dnsNames":["fo-`+db+`.example.test"]}`)
			mustSucceed(t, op)
			ca, text, ok := failoverStep(op)
			if !ok || ca != "first" || !strings.Contains(text, "CA first unreachable; trying CA second") {
				t.Errorf("failover step = %q %q (found %v); steps %+v", ca, text, ok, op.Steps)
			}
			if last := op.Steps[len(op.Steps)-1]; last.CA != "second" {
				t.Errorf("last step %+v, want it done with CA second", last)
			}
			item := certificateItem(t, base, "fo-"+db+"-example-test")
			if item["ca"] != "second" || item["isSameEndpoint"] != true {
				t.Errorf("certificate item %v, want ca second", item)
			}
			leaf, _, _ := download(t, base, "fo-"+db+"-example-test")
			if v := leaf.NotAfter.Sub(leaf.NotBefore); v < 89*24*time.Hour {
				t.Errorf("validity %v, want the default profile's 90 days", v)
			}
		})

		t.Run("first CA refuses the names: issued by the next", func(t *testing.T) {
			t.Parallel()
			op := issueOp(t, base, "/api/certificate", `{"dnsNames":["www-`+db+`.refused.test"],"ca":["refuser","second"]}`)
			mustSucceed(t, op)
			if ca, text, _ := failoverStep(op); ca != "refuser" || !strings.Contains(text, "refused the names") {
				t.Errorf("failover step = %q %q; steps %+v", ca, text, op.Steps)
			}
		})

		t.Run("only CA refuses: the operation fails with its words", func(t *testing.T) {
			t.Parallel()
			op := issueOp(t, base, "/api/certificate", `{"dnsNames":["only-`+db+`.refused.test"],"ca":"refuser"}`)
			if op.Status != "failed" || !strings.Contains(op.Error, "rejectedIdentifier") {
				t.Errorf("operation %s %q; want failed with rejectedIdentifier", op.Status, op.Error)
			}
			if _, _, ok := failoverStep(op); ok {
				t.Errorf("a failover step with a single CA: %+v", op.Steps)
			}
		})

		t.Run("CAA forbidding the only CA fails at once, quoting the record", func(t *testing.T) {
			t.Parallel()
			for name, record := range map[string]string{
				"caa-forbid.example.test": `caa-forbid.example.test. CAA 0 issue \"ca-refuser.test\"`,
				"caa-cname.example.test":  `caa-cname.example.test. CAA 0 issue \"ca-refuser.test\"`,
			} {
				r := do(t, http.MethodPost, base+"/api/certificate", `{"dnsNames":["`+name+`"],"ca":["second"]}`)
				b, _ := io.ReadAll(r.Body)
				if r.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte(record)) || !bytes.Contains(b, []byte(`"DnsNames"`)) {
					t.Errorf("POST for %s = %d %s; want 400 quoting %s", name, r.StatusCode, b, record)
				}
			}
		})

		t.Run("CAA allowing, directly and through a CNAME", func(t *testing.T) {
			t.Parallel()
			for _, name := range []string{db + ".caa-allow.example.test", "caa-cname-ok.example.test"} {
				if db == "postgres" && name == "caa-cname-ok.example.test" {
					continue // one database is enough for a name both would share in BIND
				}
				op := issueOp(t, base, "/api/certificate", `{"dnsNames":["`+name+`"],"ca":"second"}`)
				mustSucceed(t, op)
			}
		})

		t.Run("CAA forbidding one CA moves to the next", func(t *testing.T) {
			t.Parallel()
			op := issueOp(t, base, "/api/certificate", `{"dnsNames":["`+db+`.caa-forbid.example.test"],"ca":["second","refuser"]}`)
			mustSucceed(t, op)
			ca, text, _ := failoverStep(op)
			if ca != "second" || !strings.Contains(text, "CAA forbids issuance") {
				t.Errorf("failover step = %q %q", ca, text)
			}
			i := slices.IndexFunc(op.Steps, func(s struct {
				Name  string `json:"name"`
				CA    string `json:"ca"`
				Error string `json:"error"`
			}) bool {
				return s.Name == string(operation.StepCAA) && s.CA == "second"
			})
			if i < 0 || !strings.Contains(op.Steps[i].Error, `caa-forbid.example.test. CAA 0 issue "ca-refuser.test"`) {
				t.Errorf("CAA step of CA second does not quote the record: %+v", op.Steps)
			}
		})

		t.Run("profiles", func(t *testing.T) {
			t.Parallel()
			op := issueOp(t, base, "/api/certificate", `{"dnsNames":["short-`+db+`.example.test"],"ca":"second","profile":"shortlived"}`)
			mustSucceed(t, op)
			leaf, _, _ := download(t, base, "short-"+db+"-example-test")
			if v := leaf.NotAfter.Sub(leaf.NotBefore); v > 518400*time.Second || v < 518399*time.Second {
				t.Errorf("validity %v, want the shortlived profile's 6 days", v)
			}
			r := do(t, http.MethodPost, base+"/api/certificate", `{"dnsNames":["p-`+db+`.example.test"],"ca":"second","profile":"tlsserver"}`)
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `The CA does not offer the profile \"tlsserver\"; it offers default, shortlived.`) {
				t.Errorf("unknown profile = %d %s", r.StatusCode, b)
			}
			r = do(t, http.MethodPost, base+"/api/certificate", `{"dnsNames":["p-`+db+`.example.test"],"ca":["second","nope"]}`)
			b, _ = io.ReadAll(r.Body)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `The CA 'nope' is not configured; the configured CAs are first, second, refuser, eab.`) {
				t.Errorf("unknown CA = %d %s", r.StatusCode, b)
			}
		})

		t.Run("preferred chain", func(t *testing.T) {
			t.Parallel()
			op := issueOp(t, base, "/api/certificate", `{"dnsNames":["chain-`+db+`.example.test"],"ca":"second","preferredChain":"`+altRoot+`"}`)
			mustSucceed(t, op)
			_, chain, _ := download(t, base, "chain-"+db+"-example-test")
			if len(chain) == 0 || chain[len(chain)-1].Issuer.CommonName != altRoot {
				t.Errorf("chain does not lead to %s", altRoot)
			}
		})

		t.Run("External Account Binding", func(t *testing.T) {
			t.Parallel()
			mustSucceed(t, issueOp(t, base, "/api/certificate", `{"dnsNames":["eab-`+db+`.example.test"],"ca":"eab"}`))
		})

		t.Run("revocation reasons", func(t *testing.T) {
			t.Parallel()
			for n, tt := range []struct {
				reason string
				code   int
			}{{`"unspecified"`, 0}, {`"keyCompromise"`, 1}, {`3`, 3}, {`"Superseded"`, 4}, {`"cessationOfOperation"`, 5}} {
				name := fmt.Sprintf("rev%d-%s", n, db)
				mustSucceed(t, issueOp(t, base, "/api/certificate", `{"dnsNames":["`+name+`.example.test"],"ca":"second","keyType":"EC"}`))
				serial := certificateItem(t, base, name+"-example-test")["serialNumber"].(string)
				r := do(t, http.MethodPost, base+"/api/certificate/"+name+"-example-test/revoke", `{"reason":`+tt.reason+`}`)
				if r.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(r.Body)
					t.Fatalf("revoke with %s = %d %s", tt.reason, r.StatusCode, b)
				}
				got, err := d.second.CertRevocation(t.Context(), serial)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != "Revoked" || got.Reason == nil || *got.Reason != tt.code {
					t.Errorf("reason %s: Pebble holds %+v, want reason %d", tt.reason, got, tt.code)
				}
			}
		})

		t.Run("bulk revocation", func(t *testing.T) {
			t.Parallel()
			var serials []string
			for _, n := range []string{"bulk-a-" + db, "bulk-b-" + db} {
				mustSucceed(t, issueOp(t, base, "/api/certificate", `{"dnsNames":["`+n+`.example.test"],"ca":"second"}`))
				serials = append(serials, certificateItem(t, base, n+"-example-test")["serialNumber"].(string))
			}
			r := do(t, http.MethodPost, base+"/api/certificates/revoke",
				`{"names":["bulk-a-`+db+`-example-test","missing-`+db+`","bulk-b-`+db+`-example-test"],"reason":"superseded"}`)
			var ans struct {
				Revoked, Failed int
				Results         []struct{ Name, Status string }
			}
			jsonBody(t, r, &ans)
			if r.StatusCode != http.StatusMultiStatus || ans.Revoked != 2 || ans.Failed != 1 || ans.Results[1].Status != "notFound" {
				t.Errorf("bulk revoke = %d %+v", r.StatusCode, ans)
			}
			for _, s := range serials {
				if got, err := d.second.CertRevocation(t.Context(), s); err != nil || got.Reason == nil || *got.Reason != 4 {
					t.Errorf("serial %s: %+v, %v; want revoked as superseded", s, got, err)
				}
			}
		})

		t.Run("replace", func(t *testing.T) {
			t.Parallel()
			name := "repl-" + db + "-example-test"
			mustSucceed(t, issueOp(t, base, "/api/certificate", `{"dnsNames":["repl-`+db+`.example.test"],"ca":"second","reuseKey":true}`))
			oldSerial := certificateItem(t, base, name)["serialNumber"].(string)
			_, _, oldKey := download(t, base, name)
			op := issueOp(t, base, "/api/certificate/"+name+"/replace", "")
			mustSucceed(t, op)
			if !slices.ContainsFunc(op.Steps, func(s struct {
				Name  string `json:"name"`
				CA    string `json:"ca"`
				Error string `json:"error"`
			}) bool {
				return s.Name == string(operation.StepRevoking) && s.CA == "second"
			}) {
				t.Errorf("no revoking step at CA second: %+v", op.Steps)
			}
			item := certificateItem(t, base, name)
			_, _, newKey := download(t, base, name)
			if item["serialNumber"] == oldSerial || newKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(oldKey) {
				t.Errorf("replacement kept the serial or the key: %v", item)
			}
			if got, err := d.second.CertRevocation(t.Context(), oldSerial); err != nil || got.Reason == nil || *got.Reason != 1 {
				t.Errorf("replaced serial %s: %+v, %v; want revoked for keyCompromise", oldSerial, got, err)
			}
		})

		t.Run("account and rollover", func(t *testing.T) {
			t.Parallel()
			var info struct {
				CA, AccountURI, DirectoryURL string
				CAAIdentities                []string
			}
			r := do(t, http.MethodGet, base+"/api/account?ca=refuser", "")
			jsonBody(t, r, &info)
			if r.StatusCode != http.StatusOK || info.CA != "refuser" || info.AccountURI == "" ||
				info.DirectoryURL != d.refuser.DirectoryURL || !slices.Equal(info.CAAIdentities, []string{"ca-refuser.test"}) {
				t.Errorf("GET /api/account?ca=refuser = %d %+v", r.StatusCode, info)
			}
			if r := do(t, http.MethodGet, base+"/api/account?ca=nope", ""); r.StatusCode != http.StatusNotFound {
				t.Errorf("unknown CA = %d, want 404", r.StatusCode)
			}
			// The first default CA is the stopped one.
			if r := do(t, http.MethodGet, base+"/api/account", ""); r.StatusCode != http.StatusInternalServerError {
				t.Errorf("account at the stopped default CA = %d, want 500", r.StatusCode)
			}
			before := info.AccountURI
			r = do(t, http.MethodPost, base+"/api/account/rollover?ca=refuser", "")
			jsonBody(t, r, &info)
			if r.StatusCode != http.StatusOK || info.AccountURI != before {
				t.Errorf("rollover = %d %+v; want the same account", r.StatusCode, info)
			}
			mustSucceed(t, issueOp(t, base, "/api/certificate", `{"dnsNames":["roll-`+db+`.example.test"],"ca":"refuser"}`))
		})

		t.Run("dry run", func(t *testing.T) {
			t.Parallel()
			type report struct {
				OK     bool
				Checks []struct{ Check, Subject, CA, Status, Detail string }
			}
			status := func(rep report, check, subject, ca string) string {
				for _, c := range rep.Checks {
					if c.Check == check && c.Subject == subject && c.CA == ca {
						return c.Status
					}
				}
				return "missing"
			}
			r := do(t, http.MethodPost, base+"/api/certificate?dryRun=true", `{"dnsNames":["dry-`+db+`.example.test","*.dry-`+db+`.example.test"]}`)
			var good report
			jsonBody(t, r, &good)
			want := map[[3]string]string{
				{"zone", "dry-" + db + ".example.test", ""}:      "passed",
				{"delegation", "example.test", ""}:               "skipped",
				{"cname", "*.dry-" + db + ".example.test", ""}:   "passed",
				{"dnsProvider", "BIND", ""}:                      "passed",
				{"ca", "first", "first"}:                         "failed",
				{"ca", "second", "second"}:                       "passed",
				{"caa", "dry-" + db + ".example.test", "second"}: "passed",
				{"caSelection", "second", ""}:                    "passed",
			}
			for k, v := range want {
				if got := status(good, k[0], k[1], k[2]); got != v {
					t.Errorf("good dry run: %v = %s, want %s", k, got, v)
				}
			}
			if r.StatusCode != http.StatusOK || !good.OK {
				t.Errorf("good dry run = %d %+v", r.StatusCode, good)
			}
			assertNoRecords(t, d.bind, "dry-"+db+".example.test")
			if n, err := countVersions(t, base, "dry-"+db+"-example-test"); err == nil && n > 0 {
				t.Error("the dry run stored a certificate")
			}

			r = do(t, http.MethodPost, base+"/api/certificate?dryRun=true",
				`{"dnsNames":["dry-cname.example.test","caa-forbid.example.test"],"ca":"second","profile":"tlsserver"}`)
			var bad report
			jsonBody(t, r, &bad)
			want = map[[3]string]string{
				{"cname", "dry-cname.example.test", ""}:      "failed",
				{"profile", "tlsserver", "second"}:           "failed",
				{"caa", "caa-forbid.example.test", "second"}: "failed",
				{"caSelection", "second", ""}:                "failed",
				{"zone", "caa-forbid.example.test", ""}:      "passed",
			}
			for k, v := range want {
				if got := status(bad, k[0], k[1], k[2]); got != v {
					t.Errorf("broken dry run: %v = %s, want %s (%+v)", k, got, v, bad.Checks)
				}
			}
			if r.StatusCode != http.StatusOK || bad.OK {
				t.Errorf("broken dry run = %d ok %v", r.StatusCode, bad.OK)
			}
		})

		t.Run("dry run with a DNS provider that refuses", func(t *testing.T) {
			t.Parallel()
			cfg := d.config(t, db)
			cfg.DNS.Providers[0].RFC2136.TSIGSecret = secret.String("d3JvbmctdHNpZy1zZWNyZXQtZm9yLXRlc3Rpbmc=")
			other := caService(t, cfg)
			r := do(t, http.MethodPost, other+"/api/certificate?dryRun=1", `{"dnsNames":["dry-tsig-`+db+`.example.test"],"ca":"second"}`)
			var rep struct {
				OK     bool
				Checks []struct{ Check, Status, Detail string }
			}
			jsonBody(t, r, &rep)
			i := slices.IndexFunc(rep.Checks, func(c struct{ Check, Status, Detail string }) bool { return c.Check == "dnsProvider" })
			if rep.OK || i < 0 || rep.Checks[i].Status != "failed" || !strings.Contains(rep.Checks[i].Detail, d.bind.Addr) {
				t.Errorf("dry run with a wrong TSIG secret = %+v", rep)
			}
		})
	})
}

// countVersions reports whether name is listed.
func countVersions(t *testing.T, base, name string) (int, error) {
	t.Helper()
	r := do(t, http.MethodGet, base+"/api/certificates", "")
	var items []map[string]any
	jsonBody(t, r, &items)
	n := 0
	for _, it := range items {
		if it["name"] == name {
			n++
		}
	}
	return n, nil
}

func rootCN(t *testing.T, p *testenv.Pebble, n int) string {
	t.Helper()
	raw, err := p.Root(t.Context(), n)
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

// TestStartupChecksCAs checks that a CA whose directory requires an External
// Account Binding, or does not offer the configured profile, stops the
// start with a message that says so, and that an unreachable CA does not.
func TestStartupChecksCAs(t *testing.T) {
	t.Parallel()
	d := startCADeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		cfg := d.config(t, db)
		cfg.CAs[3].ExternalAccountBinding = nil
		cfg.CAs[2].Profile = "tlsserver"
		_, err := newApp(t, cfg)
		for _, want := range []string{
			"CA eab (" + d.eabs.DirectoryURL + ") requires an External Account Binding: set externalAccountBinding",
			`CA refuser (` + d.refuser.DirectoryURL + `): the configured profile: the CA does not offer profile "tlsserver"; it offers default, shortlived`,
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("New = %v\nwant it to say %q", err, want)
			}
		}
		if err != nil && strings.Contains(err.Error(), "first") {
			t.Errorf("the stopped CA is reported as a configuration problem: %v", err)
		}
	})
}
