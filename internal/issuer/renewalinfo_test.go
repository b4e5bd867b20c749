package issuer

import (
	"crypto/x509"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// endpointRecorder is a transport that records EndpointOf of every request.
type endpointRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *endpointRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, EndpointOf(req))
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func (r *endpointRecorder) endpoints() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// TestRenewalInfoAndReplaces asks Pebble for renewal information, moves the
// window, and orders replacements: announced when the same account issued
// the certificate, dropped and retried when Pebble refuses the announcement.
func TestRenewalInfoAndReplaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	rec := &endpointRecorder{base: e.pebble.HTTPClient().Transport}
	client := e.pebble.HTTPClient()
	client.Transport = rec
	iss := New(Config{DirectoryURL: e.pebble.DirectoryURL, HTTPClient: client, UserAgent: "certkeeper-test"}, newMemAccounts())
	ctx := t.Context()

	first, err := iss.Obtain(ctx, Request{Names: []string{"ari.example.test"}, KeyType: "EC"}, e.solver(), nil)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	if first.AccountURI == "" || first.Replaced != "" {
		t.Errorf("first certificate: AccountURI %q, Replaced %q; want an account and no replacement", first.AccountURI, first.Replaced)
	}
	id, err := ARICertID(first.Leaf)
	if err != nil {
		t.Fatal(err)
	}

	info, err := iss.RenewalInfo(ctx, first.Leaf)
	if err != nil {
		t.Fatalf("RenewalInfo: %v", err)
	}
	if !info.Start.Before(info.End) || info.Start.Before(first.Leaf.NotBefore) || info.End.After(first.Leaf.NotAfter) {
		t.Errorf("window %v..%v is not inside the validity %v..%v", info.Start, info.End, first.Leaf.NotBefore, first.Leaf.NotAfter)
	}
	if info.RetryAfter != 6*time.Hour {
		t.Errorf("RetryAfter = %v, want Pebble's 6h", info.RetryAfter)
	}

	past := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if err := e.pebble.SetRenewalInfo(ctx, first.CertPEM, past, past.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	info, err = iss.RenewalInfo(ctx, first.Leaf)
	if err != nil {
		t.Fatalf("RenewalInfo after moving the window: %v", err)
	}
	if !info.Start.Equal(past) || !info.End.Equal(past.Add(time.Hour)) {
		t.Errorf("window = %v..%v, want %v..%v", info.Start, info.End, past, past.Add(time.Hour))
	}

	t.Run("replacement announced by the same account", func(t *testing.T) {
		req := Request{Names: []string{"ari.example.test"}, KeyType: "EC", Replaces: &Replacement{CertID: id, AccountURI: first.AccountURI}}
		second, err := iss.Obtain(ctx, req, e.solver(), nil)
		if err != nil {
			t.Fatalf("Obtain: %v", err)
		}
		if second.Replaced != id {
			t.Errorf("Replaced = %q, want %q", second.Replaced, id)
		}
		if !strings.Contains(e.pebble.Log(), "is a replacement of") {
			t.Error("Pebble did not log the order as a replacement")
		}
		// Replacing the same certificate again: Pebble answers
		// alreadyReplaced and the order goes through without replaces.
		third, err := iss.Obtain(ctx, req, e.solver(), nil)
		if err != nil {
			t.Fatalf("Obtain replacing an already replaced certificate: %v", err)
		}
		if third.Replaced != "" {
			t.Errorf("Replaced = %q after alreadyReplaced, want empty", third.Replaced)
		}
	})
	t.Run("another account's certificate is not announced", func(t *testing.T) {
		req := Request{Names: []string{"ari.example.test"}, KeyType: "EC",
			Replaces: &Replacement{CertID: id, AccountURI: "https://elsewhere.example/acct/1"}}
		cert, err := iss.Obtain(ctx, req, e.solver(), nil)
		if err != nil {
			t.Fatalf("Obtain: %v", err)
		}
		if cert.Replaced != "" {
			t.Errorf("Replaced = %q, want empty", cert.Replaced)
		}
	})
	t.Run("refused announcement is dropped", func(t *testing.T) {
		unknown := *first.Leaf
		unknown.SerialNumber = big.NewInt(0x5eed)
		bogus, err := ARICertID(&unknown)
		if err != nil {
			t.Fatal(err)
		}
		req := Request{Names: []string{"ari.example.test"}, KeyType: "EC", Replaces: &Replacement{CertID: bogus, AccountURI: first.AccountURI}}
		cert, err := iss.Obtain(ctx, req, e.solver(), nil)
		if err != nil {
			t.Fatalf("Obtain: %v", err)
		}
		if cert.Replaced != "" {
			t.Errorf("Replaced = %q, want empty", cert.Replaced)
		}
	})

	seen := rec.endpoints()
	for _, want := range []string{EndpointDirectory, EndpointNewNonce, EndpointNewAccount, EndpointNewOrder,
		EndpointAuthorization, EndpointChallenge, EndpointFinalize, EndpointCertificate, EndpointRenewalInfo} {
		if !slices.Contains(seen, want) {
			t.Errorf("no request labelled %s; saw %v", want, seen)
		}
	}
	if slices.Contains(seen, EndpointOther) {
		t.Errorf("a request was labelled %s: %v", EndpointOther, seen)
	}
}

func TestARICertIDNeedsAKI(t *testing.T) {
	t.Parallel()
	if _, err := ARICertID(&x509.Certificate{SerialNumber: big.NewInt(1)}); err == nil {
		t.Error("ARICertID of a certificate without an authority key identifier succeeded")
	}
	if _, err := ARICertID(nil); err == nil {
		t.Error("ARICertID(nil) succeeded")
	}
}
