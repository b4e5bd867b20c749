package testenv

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStartPebble(t *testing.T) {
	t.Parallel()
	// No validation happens here, so the resolver need not answer.
	p := StartPebble(t, PebbleOptions{DNSServer: "127.0.0.1:1"})

	t.Run("directory lists the profiles", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.DirectoryURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := p.HTTPClient().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p.DirectoryURL, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var dir struct {
			NewOrder string `json:"newOrder"`
			Meta     struct {
				Profiles map[string]string `json:"profiles"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(body, &dir); err != nil {
			t.Fatalf("decoding directory %s: %v", body, err)
		}
		var names []string
		for n := range dir.Meta.Profiles {
			names = append(names, n)
		}
		slices.Sort(names)
		if diff := cmp.Diff([]string{"default", "shortlived"}, names); diff != "" || dir.NewOrder == "" {
			t.Errorf("directory %s: profiles (-want +got):\n%s", body, diff)
		}
	})

	t.Run("issuer root is a CA certificate", func(t *testing.T) {
		roots, err := p.IssuerRoots(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(roots)
		if block == nil {
			t.Fatalf("roots are not PEM: %q", roots)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !cert.IsCA {
			t.Errorf("root %s is not a CA", cert.Subject)
		}
	})

	t.Run("unknown serial has no status", func(t *testing.T) {
		if got, err := p.CertStatus(t.Context(), "abcdef"); err == nil {
			t.Errorf("CertStatus(unknown) = %q, want error", got)
		}
	})

	t.Run("restart keeps the addresses", func(t *testing.T) {
		dirURL := p.DirectoryURL
		p.Restart(t)
		if p.DirectoryURL != dirURL {
			t.Errorf("DirectoryURL = %s after restart, want %s", p.DirectoryURL, dirURL)
		}
		if _, err := p.IssuerRoots(t.Context()); err != nil {
			t.Errorf("after restart: %v", err)
		}
	})
}
