package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-acme/lego/v5/acme"
)

// UnreachableError is a request to the CA that got no HTTP answer: the
// connection was refused or reset, the name did not resolve, TLS failed, or
// the request timed out.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("the CA at %s is unreachable: %v", e.URL, e.Err)
}

// Unwrap returns the transport error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// classifyingTransport marks transport failures as *UnreachableError and
// turns a 5xx answer that is not a problem document (a proxy's HTML page)
// into a serverInternal problem document, so that every failure of the CA
// itself is recognisable through lego's error wrapping.
type classifyingTransport struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *classifyingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, &UnreachableError{URL: req.URL.Redacted(), Err: err}
	}
	if resp.StatusCode < 500 || isProblemJSON(resp.Header.Get("Content-Type")) {
		return resp, nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_ = resp.Body.Close()
	detail := fmt.Sprintf("the CA answered HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if s := strings.Join(strings.Fields(string(snippet)), " "); s != "" && utf8.ValidString(s) {
		detail += ": " + s
	}
	body, _ := json.Marshal(acme.ProblemDetails{Type: acme.ServerInternalErrorType, Detail: detail, HTTPStatus: resp.StatusCode})
	resp.Header = resp.Header.Clone()
	resp.Header.Set("Content-Type", "application/problem+json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func isProblemJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/problem+json" || mt == "application/json")
}

// FailoverReason says why another CA could succeed where err failed, as a
// short phrase ("unreachable", "server error", "rate limited", "refused the
// names", "CAA forbids issuance", "does not offer the profile", "requires
// an External Account Binding", "requires action on the account"), or ""
// when another CA would fail the same way (a DNS problem on this side, a
// cancelled context, a bad request).
func FailoverReason(err error) string {
	if err == nil || errors.Is(err, context.Canceled) {
		return ""
	}
	if _, ok := errors.AsType[*ProfileError](err); ok {
		return "does not offer the profile"
	}
	if errors.Is(err, ErrEABRequired) {
		return "requires an External Account Binding"
	}
	if pd, ok := errors.AsType[*acme.ProblemDetails](err); ok && pd != nil {
		switch pd.Type {
		case acme.RateLimitedErrorType:
			return "rate limited"
		case acme.RejectedIdentifierErrorType, acme.UnsupportedIdentifierErrorType:
			return "refused the names"
		case acme.CaaErrorType:
			return "CAA forbids issuance"
		case acme.InvalidProfileErrorType:
			return "does not offer the profile"
		case acme.ExternalAccountRequiredErrorType:
			return "requires an External Account Binding"
		case acme.UserActionRequiredErrorType:
			return "requires action on the account"
		case acme.ServerInternalErrorType:
			return "server error"
		}
		if pd.HTTPStatus >= 500 {
			return "server error"
		}
		return ""
	}
	if _, ok := errors.AsType[*UnreachableError](err); ok {
		return "unreachable"
	}
	return ""
}
