package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
)

// RenewalInfo is the CA's advice on when to renew one certificate (ACME
// Renewal Information, RFC 9773 section 4.2).
type RenewalInfo struct {
	// Start and End bound the suggested window; End is after Start.
	Start, End time.Time
	// RetryAfter is how long the CA asks clients to wait before asking
	// again (its Retry-After header); zero when it sent none.
	RetryAfter time.Duration
	// ExplanationURL is the CA's page explaining the window, if any.
	ExplanationURL string
}

// ErrNoRenewalInfo is returned by RenewalInfo when the CA does not offer
// renewal information, or offered a window that RFC 9773 section 4.2 says to
// treat as no answer (its end not after its start).
var ErrNoRenewalInfo = errors.New("the CA offers no renewal information")

// ARICertID returns the certificate's ARI identifier: the base64url of its
// authority key identifier and of its serial number's DER bytes, joined by a
// dot (RFC 9773 section 4.1).
func ARICertID(leaf *x509.Certificate) (string, error) {
	if leaf == nil || len(leaf.AuthorityKeyId) == 0 {
		return "", errors.New("computing ARI certificate id: the certificate has no authority key identifier")
	}
	id, err := api.MakeARICertID(leaf)
	if err != nil {
		return "", fmt.Errorf("computing ARI certificate id: %w", err)
	}
	return id, nil
}

// RenewalInfo asks the CA when leaf should be renewed (RFC 9773 section
// 4.2). A CA without renewal information gives ErrNoRenewalInfo. It is safe
// for concurrent use.
func (i *Issuer) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (RenewalInfo, error) {
	id, err := ARICertID(leaf)
	if err != nil {
		return RenewalInfo{}, err
	}
	var info RenewalInfo
	_, err = i.withAccount(ctx, func(s *session) error {
		rctx, sink := withRetryAfterSink(ctx, s.core.GetDirectory().RenewalInfo+"/"+id)
		ext, err := s.core.Certificates.GetRenewalInfo(WithEndpoint(rctx, EndpointRenewalInfo), id)
		if err != nil {
			return err
		}
		info = RenewalInfo{
			Start: ext.SuggestedWindow.Start.UTC(), End: ext.SuggestedWindow.End.UTC(),
			RetryAfter: ext.RetryAfter, ExplanationURL: ext.ExplanationURL,
		}
		// lego reads a Retry-After date against certkeeper's clock; read it
		// against the CA's Date instead, as polls do (retryHint), so that
		// a skewed CA clock does not move the next look.
		if d, ok := sink.get().delay(time.Now()); ok {
			info.RetryAfter = d
		}
		return nil
	})
	if errors.Is(err, api.ErrNoARI) {
		return RenewalInfo{}, ErrNoRenewalInfo
	}
	if err != nil {
		return RenewalInfo{}, fail("", "asking the CA for renewal information of "+id, err)
	}
	return info, nil
}
