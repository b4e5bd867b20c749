package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// runCLI runs the binary's entry point with the server and key in the
// environment and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, server string, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv(envURL, server)
	t.Setenv(envAPIKey, "cli-test-key")
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// fakeAPI answers like certkeeper's API for the few requests a test needs
// and checks the API key on each.
func fakeAPI(t *testing.T, routes map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Functions-Key") != "cli-test-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func jsonHandler(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

const listBody = `[{"id":"a","name":"www-example-test","dnsNames":["www.example.test","api.example.test"],"dnsProviderName":"BIND",
"expiresOn":"2099-01-01T00:00:00+00:00","keyType":"RSA","keySize":2048,"isExpired":false,"revoked":false},
{"id":"b","name":"old","dnsNames":["old.example.test"],"dnsProviderName":"","expiresOn":"2001-01-01T00:00:00+00:00","isExpired":true,"revoked":true}]`

const renewalsBody = `[{"certificateName":"www-example-test","status":"Scheduled","statusKind":"scheduled","message":"",
"nextCheck":"2099-01-01T00:00:00+00:00","lastCheckedAt":null,"renewAt":"2098-12-01T00:00:00+00:00","source":"ari","failures":0},
{"certificateName":"old","status":"Revoked","statusKind":"revoked","message":"","nextCheck":null,"lastCheckedAt":null,
"renewAt":null,"source":"","failures":2}]`

func TestListTable(t *testing.T) {
	srv := fakeAPI(t, map[string]http.HandlerFunc{"GET /api/certificates": jsonHandler(200, listBody),
		"GET /api/renewals": jsonHandler(200, renewalsBody)})
	out, errOut, code := runCLI(t, srv.URL, "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), out)
	}
	for i, want := range [][]string{
		{"NAME", "DNS", "NAMES", "EXPIRES", "IN", "PROVIDER", "STATUS", "RENEWAL", "NEXT RENEWAL"},
		{"www-example-test", "www.example.test,api.example.test", "", "BIND", "valid", "scheduled", "in "},
		{"old", "old.example.test", "expired", "-", "revoked", "revoked (2 failures)"},
	} {
		fields := strings.Fields(lines[i])
		for _, w := range want {
			if w != "" && !strings.Contains(strings.Join(fields, " "), w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	if !strings.HasSuffix(strings.Fields(lines[1])[2], "d") {
		t.Errorf("expiry of a valid certificate is not in days: %q", lines[1])
	}
}

func TestListJSON(t *testing.T) {
	// A server without GET /api/renewals (404) lists certificates alone.
	srv := fakeAPI(t, map[string]http.HandlerFunc{"GET /api/certificates": jsonHandler(200, listBody),
		"GET /api/renewals": jsonHandler(404, `{"status":404}`)})
	out, _, code := runCLI(t, srv.URL, "list", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var items []certificateItem
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if len(items) != 2 || items[0].Name != "www-example-test" || !items[1].Revoked || items[0].Renewal != nil {
		t.Errorf("items = %+v", items)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	srv := fakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/certificate/nope/renew": jsonHandler(404, `{"type":"x","title":"Not Found","status":404,"detail":"The certificate 'nope' does not exist."}`),
		"POST /api/certificate": jsonHandler(400, `{"title":"One or more validation errors occurred.","status":400,
			"errors":{"DnsNames":["The DnsNames is required."]}}`),
	})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	tests := []struct {
		name   string
		server string
		args   []string
		want   string
		code   int
	}{
		{"unknown certificate", srv.URL, []string{"renew", "nope"}, "certkeeper: The certificate 'nope' does not exist.\n", 1},
		{"validation", srv.URL, []string{"issue", "x"}, "certkeeper: DnsNames: The DnsNames is required.\n", 1},
		{"server down", dead.URL, []string{"list"}, "certkeeper: cannot reach certkeeper at " + dead.URL, 1},
		{"bad URL", "ftp://x", []string{"list"}, `certkeeper: the server URL "ftp://x" is not an http(s) URL` + "\n", 2},
		{"missing argument", srv.URL, []string{"renew"}, "certkeeper: renew needs exactly one certificate name\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, tt.server, tt.args...)
			if code != tt.code || !strings.HasPrefix(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line starting %q", code, errOut, tt.code, tt.want)
			}
		})
	}
	t.Run("refused key", func(t *testing.T) {
		t.Setenv(envURL, srv.URL)
		t.Setenv(envAPIKey, "wrong")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"list"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "refused the API key (401)") {
			t.Errorf("exit %d, stderr %q", code, stderr.String())
		}
	})
}

func TestIssueWaitShowsSteps(t *testing.T) {
	var polls atomic.Int32
	op := func(status, current string, steps int) string {
		all := []string{`{"name":"ordering","startedAt":"2026-01-01T00:00:00Z","finishedAt":"2026-01-01T00:00:00.1Z","durationMs":100}`,
			`{"name":"presenting DNS records","startedAt":"2026-01-01T00:00:00.1Z","finishedAt":"2026-01-01T00:00:00.2Z","durationMs":100}`}
		return `{"id":"0123456789abcdef0123456789abcdef","kind":"issue","certificateName":"www","status":"` + status +
			`","currentStep":"` + current + `","versionId":"0123456789abcdef0123456789abcdef","steps":[` + strings.Join(all[:steps], ",") + `]}`
	}
	srv := fakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/certificate": func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			want := map[string]any{"dnsNames": []any{"www.example.test"}, "keyType": "EC", "keyCurveName": "P-384"}
			if diff := cmp.Diff(want, body); diff != "" {
				t.Errorf("request body (-want +got):\n%s", diff)
			}
			w.Header().Set("Location", "http://"+r.Host+"/api/state/0123456789abcdef0123456789abcdef")
			w.WriteHeader(http.StatusAccepted)
		},
		"GET /api/operations/0123456789abcdef0123456789abcdef": func(w http.ResponseWriter, r *http.Request) {
			switch polls.Add(1) {
			case 1:
				jsonHandler(202, op("running", "validating", 1))(w, r)
			default:
				jsonHandler(200, op("succeeded", "", 2))(w, r)
			}
		},
	})
	out, errOut, code := runCLI(t, srv.URL, "issue", "www.example.test", "--key-type", "EC", "--curve", "P-384", "--wait")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if errOut != "- ordering (100ms)\n- presenting DNS records (100ms)\n" {
		t.Errorf("progress on a non-terminal = %q", errOut)
	}
	if out != "certificate www is ready (version 0123456789abcdef0123456789abcdef)\n" {
		t.Errorf("stdout = %q", out)
	}
}

func TestWaitFailureGivesDetail(t *testing.T) {
	srv := fakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/certificate/www/renew": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "http://"+r.Host+"/api/state/0123456789abcdef0123456789abcdef")
			w.WriteHeader(http.StatusAccepted)
		},
		"GET /api/operations/0123456789abcdef0123456789abcdef": jsonHandler(500, `{"status":500,
			"detail":"validating: CA answered urn:ietf:params:acme:error:unauthorized: bad TXT",
			"operation":{"id":"0123456789abcdef0123456789abcdef","status":"failed","steps":[
			{"name":"validating","startedAt":"2026-01-01T00:00:00Z","finishedAt":"2026-01-01T00:00:01Z","durationMs":1000,"error":"bad TXT"}]}}`),
	})
	_, errOut, code := runCLI(t, srv.URL, "renew", "www", "--wait")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "- validating (1s)\ncertkeeper: validating: CA answered urn:ietf:params:acme:error:unauthorized: bad TXT\n"
	if errOut != want {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
}

func TestGetWritesFiles(t *testing.T) {
	bundle := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" +
		"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n" +
		"-----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n"
	srv := fakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/certificates/www/download": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("format") != "pem" {
				t.Errorf("format = %q", r.URL.Query().Get("format"))
			}
			w.Write([]byte(bundle))
		},
	})
	dir := filepath.Join(t.TempDir(), "out")
	if _, errOut, code := runCLI(t, srv.URL, "get", "www", "--out", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	leaf := "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n"
	chain := "-----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n"
	for name, want := range map[string]struct {
		body string
		mode os.FileMode
	}{
		"cert.pem": {leaf, 0o644}, "chain.pem": {chain, 0o644}, "fullchain.pem": {leaf + chain, 0o644},
		"privkey.pem": {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0o600},
	} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want.body {
			t.Errorf("%s = %q, want %q", name, got, want.body)
		}
		info, _ := os.Stat(filepath.Join(dir, name))
		if info.Mode().Perm() != want.mode {
			t.Errorf("%s mode %v, want %v", name, info.Mode().Perm(), want.mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("directory holds %d entries, want exactly the 4 files (no temporary files left)", len(entries))
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{-time.Second: "expired", 0: "expired", 30 * time.Minute: "30m",
		5 * time.Hour: "5h", 89*24*time.Hour + time.Hour: "89d"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
