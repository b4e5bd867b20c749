// Package dnstest holds what the tests of DNS provider packages share: the
// RRset scenario every provider must pass against its fake API, and strict
// JSON helpers for those fakes. It is imported by tests only.
package dnstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns"
)

// Scenario drives p through the RRset contract of dns.Provider at fqdn in
// zone and checks, after each step, what read (the fake API's state)
// returns for fqdn: values are added next to the ones there, removed one by
// one, removing absent values is no error, and an empty RRset is gone.
func Scenario(t *testing.T, p dns.Provider, zone, fqdn string, read func() []string) {
	t.Helper()
	ctx := t.Context()
	check := func(step string, want []string) {
		t.Helper()
		got := slices.Clone(read())
		slices.Sort(got)
		if want == nil {
			want = []string{}
		}
		if got == nil {
			got = []string{}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("after %s, TXT %s (-want +got):\n%s", step, fqdn, diff)
		}
	}
	check("nothing", nil)
	if err := p.Present(ctx, zone, fqdn, []string{"value-b", "value-a"}); err != nil {
		t.Fatalf("Present two values: %v", err)
	}
	check("Present two values", []string{"value-a", "value-b"})
	if err := p.Present(ctx, zone, fqdn, []string{"value-a", "value-c"}); err != nil {
		t.Fatalf("Present again with one new value: %v", err)
	}
	check("Present again", []string{"value-a", "value-b", "value-c"})
	if err := p.CleanUp(ctx, zone, fqdn, []string{"value-b"}); err != nil {
		t.Fatalf("CleanUp one value: %v", err)
	}
	check("CleanUp one value", []string{"value-a", "value-c"})
	if err := p.CleanUp(ctx, zone, fqdn, []string{"value-a", "value-c", "never-there"}); err != nil {
		t.Fatalf("CleanUp the rest: %v", err)
	}
	check("CleanUp the rest", nil)
	if err := p.CleanUp(ctx, zone, fqdn, []string{"value-a"}); err != nil {
		t.Fatalf("CleanUp of a gone RRset: %v", err)
	}
}

// ReadJSON decodes r's body into v, refusing unknown fields and trailing
// data, and reports the problem on t (as the API would refuse it).
func ReadJSON(t *testing.T, r *http.Request, v any) bool {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("%s %s: reading body: %v", r.Method, r.URL, err)
		return false
	}
	if err := DecodeStrict(body, v); err != nil {
		t.Errorf("%s %s: body %s: %v", r.Method, r.URL, body, err)
		return false
	}
	return true
}

// DecodeStrict decodes data into v, refusing unknown fields and trailing
// data.
func DecodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// WantHeader reports on t when r's header name is not want.
func WantHeader(t *testing.T, r *http.Request, name, want string) bool {
	t.Helper()
	if got := r.Header.Get(name); got != want {
		t.Errorf("%s %s: header %s = %q, want %q", r.Method, r.URL.Path, name, got, want)
		return false
	}
	return true
}
