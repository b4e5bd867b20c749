package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// bodyOf decodes a request's JSON body.
func bodyOf(t *testing.T, r *http.Request) map[string]any {
	t.Helper()
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("body %s: %v", raw, err)
		}
	}
	return m
}

func TestIssueDryRun(t *testing.T) {
	report := func(ok bool) string {
		status := "passed"
		if !ok {
			status = "failed"
		}
		return `{"ok":` + map[bool]string{true: "true", false: "false"}[ok] + `,"checks":[
			{"check":"zone","subject":"www.example.test","status":"passed","detail":"in zone example.test of DNS provider BIND"},
			{"check":"caa","subject":"www.example.test","ca":"le","status":"` + status + `","detail":"example.test. CAA 0 issue \";\""}]}`
	}
	for _, ok := range []bool{true, false} {
		var got map[string]any
		var query string
		srv := fakeAPI(t, map[string]http.HandlerFunc{"POST /api/certificate": func(w http.ResponseWriter, r *http.Request) {
			got, query = bodyOf(t, r), r.URL.RawQuery
			jsonHandler(200, report(ok))(w, r)
		}})
		out, errOut, code := runCLI(t, srv.URL, "issue", "--dry-run", "--ca", "le,zerossl", "--ca", "buypass",
			"--preferred-chain", "ISRG Root X1", "www.example.test")
		wantCode := 0
		if !ok {
			wantCode = 1
		}
		if code != wantCode || errOut != "" {
			t.Errorf("ok=%v: exit %d, stderr %q; want exit %d and nothing on stderr", ok, code, errOut, wantCode)
		}
		if query != "dryRun=true" {
			t.Errorf("query %q", query)
		}
		want := map[string]any{"dnsNames": []any{"www.example.test"}, "ca": []any{"le", "zerossl", "buypass"}, "preferredChain": "ISRG Root X1"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("request body (-want +got):\n%s", diff)
		}
		for _, s := range []string{"CHECK", "caa", "www.example.test", `example.test. CAA 0 issue ";"`, "no order was placed"} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q:\n%s", s, out)
			}
		}
	}
}

func TestRevokeSeveral(t *testing.T) {
	var got map[string]any
	srv := fakeAPI(t, map[string]http.HandlerFunc{"POST /api/certificates/revoke": func(w http.ResponseWriter, r *http.Request) {
		got = bodyOf(t, r)
		jsonHandler(http.StatusMultiStatus, `{"reason":1,"revoked":1,"failed":1,"results":[{"name":"a","status":"revoked"},
			{"name":"b","status":"notFound","error":"The certificate 'b' does not exist."}]}`)(w, r)
	}})
	out, _, code := runCLI(t, srv.URL, "revoke", "a", "b", "--reason", "keyCompromise")
	if code != 1 {
		t.Errorf("exit %d; want 1 when one was not revoked", code)
	}
	if diff := cmp.Diff(map[string]any{"names": []any{"a", "b"}, "reason": "keyCompromise"}, got); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
	want := "certificate a is revoked\ncertificate b is not revoked: The certificate 'b' does not exist.\n"
	if out != want {
		t.Errorf("output %q\nwant %q", out, want)
	}
}

func TestReplace(t *testing.T) {
	var got map[string]any
	srv := fakeAPI(t, map[string]http.HandlerFunc{"POST /api/certificate/www/replace": func(w http.ResponseWriter, r *http.Request) {
		got = bodyOf(t, r)
		w.Header().Set("Location", "http://"+r.Host+"/api/state/0123456789abcdef0123456789abcdef")
		w.WriteHeader(http.StatusAccepted)
	}})
	out, errOut, code := runCLI(t, srv.URL, "replace", "www", "--reason", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if diff := cmp.Diff(map[string]any{"reason": float64(4)}, got); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
	if !strings.Contains(out, "operation 0123456789abcdef0123456789abcdef accepted") {
		t.Errorf("output %q", out)
	}
	if _, errOut, code := runCLI(t, srv.URL, "replace"); code != 2 || !strings.Contains(errOut, "replace needs exactly one certificate name") {
		t.Errorf("replace without a name: exit %d, %q", code, errOut)
	}
}

func TestAccount(t *testing.T) {
	const info = `{"ca":"zerossl","accountUri":"https://acme.zerossl.com/v2/DV90/account/x","directoryUrl":"https://acme.zerossl.com/v2/DV90","caaIdentities":["sectigo.com"]}`
	var queries []string
	srv := fakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/account": func(w http.ResponseWriter, r *http.Request) {
			queries = append(queries, "GET "+r.URL.RawQuery)
			jsonHandler(200, info)(w, r)
		},
		"POST /api/account/rollover": func(w http.ResponseWriter, r *http.Request) {
			queries = append(queries, "POST "+r.URL.RawQuery)
			jsonHandler(200, info)(w, r)
		},
	})
	out, _, code := runCLI(t, srv.URL, "account", "show")
	if code != 0 || !strings.Contains(out, "account:        https://acme.zerossl.com/v2/DV90/account/x") ||
		!strings.Contains(out, "CAA identities: sectigo.com") {
		t.Errorf("account show: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, srv.URL, "account", "rollover", "--ca", "zerossl", "--json")
	var got accountInfo
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.CA != "zerossl" {
		t.Errorf("account rollover --json: exit %d\n%s", code, out)
	}
	if diff := cmp.Diff([]string{"GET ", "POST ca=zerossl"}, queries); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	for _, args := range [][]string{{"account"}, {"account", "rollover"}, {"account", "delete"}} {
		if _, errOut, code := runCLI(t, srv.URL, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, %q; want a usage error", args, code, errOut)
		}
	}
}
