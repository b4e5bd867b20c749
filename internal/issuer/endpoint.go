package issuer

import (
	"context"
	"net/http"
)

// The ACME resources a request to the CA is for, as EndpointOf names them.
// They are few and fixed, so they make bounded metric labels.
const (
	EndpointDirectory     = "directory"
	EndpointNewNonce      = "newNonce"
	EndpointNewAccount    = "newAccount"
	EndpointNewOrder      = "newOrder"
	EndpointOrder         = "order"
	EndpointAuthorization = "authorization"
	EndpointChallenge     = "challenge"
	EndpointFinalize      = "finalize"
	EndpointCertificate   = "certificate"
	EndpointRevokeCert    = "revokeCert"
	EndpointRenewalInfo   = "renewalInfo"
	EndpointOther         = "other"
)

type endpointKey struct{}

// WithEndpoint returns ctx marked as carrying requests for the named ACME
// resource.
func WithEndpoint(ctx context.Context, endpoint string) context.Context {
	return context.WithValue(ctx, endpointKey{}, endpoint)
}

// EndpointOf names the ACME resource req is for: a HEAD is a nonce request
// (RFC 8555 section 7.2) whatever call it serves; otherwise the name the
// Issuer put on the request's context, or EndpointDirectory for a GET
// without one (lego reads the directory without a context), or
// EndpointOther. An http.RoundTripper wrapped around Config.HTTPClient's
// transport uses it to label metrics.
func EndpointOf(req *http.Request) string {
	if req.Method == http.MethodHead {
		return EndpointNewNonce
	}
	if e, ok := req.Context().Value(endpointKey{}).(string); ok {
		return e
	}
	if req.Method == http.MethodGet {
		return EndpointDirectory
	}
	return EndpointOther
}
