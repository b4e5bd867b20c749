package issuer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-acme/lego/v5/acme"

	"github.com/certkeeper/certkeeper/internal/operation"
)

// ProblemError is the error Obtain and Revoke return (possibly joined with a
// DNS cleanup error; use errors.As). It names the step that failed and what
// was being done, and carries the CA's own words when the CA refused:
//
//   - Step is the issuance step that failed (operation.StepOrdering, ...).
//     Revoke leaves it empty.
//   - Op is what was being done, as a lowercase phrase ("creating order").
//   - Type and Detail are the CA's problem document (RFC 8555 section 6.7),
//     e.g. "urn:ietf:params:acme:error:unauthorized" and
//     `Incorrect TXT record "…" found at _acme-challenge.example.com`. They are
//     empty when the failure was not a CA problem (network, DNS solver,
//     cancellation).
//   - Identifier is the DNS name the problem concerns, when known.
//   - Err is the underlying error; for CA problems it is the
//     *acme.ProblemDetails.
type ProblemError struct {
	Step       operation.Step
	Op         string
	Type       string
	Detail     string
	Identifier string
	Err        error
}

// Error returns "<op>: <CA type>: <CA detail>" for CA problems and
// "<op>: <cause>" otherwise.
func (e *ProblemError) Error() string {
	if e.Type == "" && e.Detail == "" {
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	}
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": CA answered ")
	if e.Type != "" {
		b.WriteString(e.Type)
		b.WriteString(": ")
	}
	b.WriteString(e.Detail)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ProblemError) Unwrap() error { return e.Err }

// fail builds a ProblemError for err, lifting the CA's problem document out
// of it when there is one.
func fail(step operation.Step, op string, err error) *ProblemError {
	pe := &ProblemError{Step: step, Op: op, Err: err}
	if pd, ok := errors.AsType[*acme.ProblemDetails](err); ok && pd != nil {
		pe.Type, pe.Detail = pd.Type, problemText(pd)
	}
	return pe
}

// problemFailure builds a ProblemError from a problem document that came in
// a resource body (an invalid challenge or order) rather than as an HTTP error.
func problemFailure(step operation.Step, op, identifier string, pd *acme.ProblemDetails) *ProblemError {
	if pd == nil {
		return &ProblemError{Step: step, Op: op, Identifier: identifier,
			Err: errors.New("the CA gave no reason")}
	}
	return &ProblemError{
		Step:       step,
		Op:         op,
		Type:       pd.Type,
		Detail:     problemText(pd),
		Identifier: identifier,
		Err:        pd,
	}
}

// problemText is the detail of pd followed by the details of its subproblems.
func problemText(pd *acme.ProblemDetails) string {
	text := pd.Detail
	for _, sub := range pd.SubProblems {
		part := sub.Detail
		if sub.Identifier.Value != "" {
			part = sub.Identifier.Value + ": " + part
		}
		if sub.Type != "" {
			part += " (" + sub.Type + ")"
		}
		if strings.Contains(text, sub.Detail) {
			continue
		}
		if text != "" {
			text += "; "
		}
		text += part
	}
	return text
}

// accountMissing reports whether err says the CA does not know the account
// that signed the request, as after a CA database loss or a Pebble restart.
func accountMissing(err error) bool {
	pd, ok := errors.AsType[*acme.ProblemDetails](err)
	if !ok || pd == nil {
		return false
	}
	switch pd.Type {
	case acme.AccountDoesNotExistErrorType:
		return true
	case acme.UnauthorizedErrorType:
		d := strings.ToLower(pd.Detail)
		return strings.Contains(d, "account") &&
			(strings.Contains(d, "not found") || strings.Contains(d, "does not exist") ||
				strings.Contains(d, "no account") || strings.Contains(d, "deactivated"))
	}
	return false
}
