package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// CABackend is what the routes for several CAs need: dry runs, the ACME
// account of each CA, key rollover and re-issue-then-revoke. A Backend
// that also implements it serves those routes; otherwise they answer 404.
// Implementations are safe for concurrent use.
type CABackend interface {
	// DryRun runs every check an issuance of spec depends on without
	// placing an order and reports each one.
	DryRun(ctx context.Context, spec certificate.Spec) (DryRunReport, error)
	// Account returns the ACME account at the CA called ca ("" for the
	// first default CA), registering it on first use, or an error wrapping
	// ErrUnknownCA.
	Account(ctx context.Context, ca string) (AccountInfo, error)
	// RolloverAccount replaces the account key at the CA called ca (RFC
	// 8555 section 7.3.5), or an error wrapping ErrUnknownCA.
	RolloverAccount(ctx context.Context, ca string) (AccountInfo, error)
	// Replace starts issuing the named certificate again with a new key
	// and, once stored, revoking the version replaced with reason; it
	// returns the operation id, or vault.ErrNotFound.
	Replace(ctx context.Context, name string, reason int) (string, error)
	// CAEndpoints are the directory URLs of every configured CA.
	CAEndpoints() []string
}

// ErrUnknownCA is wrapped by CABackend errors for a CA name that is not
// configured.
var ErrUnknownCA = errors.New("CA not configured")

// AccountInfo is the ACME account at one CA, as GET /api/account shows it.
type AccountInfo struct {
	CA            string   `json:"ca"`
	AccountURI    string   `json:"accountUri"`
	DirectoryURL  string   `json:"directoryUrl"`
	CAAIdentities []string `json:"caaIdentities"`
}

// Statuses of a dry-run check.
const (
	CheckPassed  = "passed"
	CheckFailed  = "failed"
	CheckWarning = "warning"
	CheckSkipped = "skipped"
)

// DryRunReport is the answer of POST /api/certificate?dryRun=true.
type DryRunReport struct {
	// OK is true when an issuance would get past every check.
	OK     bool          `json:"ok"`
	Checks []DryRunCheck `json:"checks"`
}

// DryRunCheck is the result of one check.
type DryRunCheck struct {
	// Check names what was checked: zone, delegation, cname, dnsProvider,
	// ca, profile, caa, caSelection.
	Check string `json:"check"`
	// Subject is the DNS name, provider or CA checked.
	Subject string `json:"subject"`
	// CA is the CA the check concerns, when it concerns one.
	CA string `json:"ca,omitempty"`
	// Status is passed, failed, warning or skipped.
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// maxCANames bounds the ca list of an issue request, maxBulkNames the names
// of a bulk revocation.
const (
	maxCANames        = 10
	maxBulkNames      = 100
	maxPreferredChain = 128
)

var caNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// parseCAFields reads the ca (a name or a list of names, tried in order)
// and preferredChain members of an issue request into spec.
func parseCAFields(obj map[string]json.RawMessage, spec *certificate.Spec, errs fieldErrors) {
	if raw := obj["ca"]; !absent(raw) {
		var list []string
		if s, ok := stringValue(raw); ok {
			if s != "" {
				list = []string{s}
			}
		} else if raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
			errs.add("Ca", "The Ca must be a CA name or an array of CA names.")
			list = nil
		}
		if len(list) > maxCANames {
			errs.add("Ca", "The Ca must name at most %d CAs.", maxCANames)
		} else {
			for _, n := range list {
				if !caNamePattern.MatchString(n) {
					errs.add("Ca", "The Ca '%s' is not a CA name.", n)
				}
			}
			spec.CA = list
		}
	}
	chain, ok := stringValue(obj["preferredchain"])
	switch {
	case !ok:
		errs.add("PreferredChain", "The PreferredChain must be a string.")
	case utf8.RuneCountInString(chain) > maxPreferredChain || strings.ContainsFunc(chain, unicode.IsControl):
		errs.add("PreferredChain", "The PreferredChain must be a common name of at most %d characters.", maxPreferredChain)
	default:
		spec.PreferredChain = strings.TrimSpace(chain)
	}
}

// caBackend returns the backend's CABackend, or a 404 when it has none.
func (s *server) caBackend(r *http.Request) (CABackend, error) {
	cb, ok := s.backend.(CABackend)
	if !ok {
		return nil, &httpError{status: http.StatusNotFound, detail: "There is no resource at " + r.URL.Path + "."}
	}
	return cb, nil
}

// dryRun answers POST /api/certificate?dryRun=true: 200 with the report,
// whether the checks passed or not.
func (s *server) dryRun(w http.ResponseWriter, r *http.Request, spec certificate.Spec) error {
	cb, err := s.caBackend(r)
	if err != nil {
		return err
	}
	report, err := cb.DryRun(r.Context(), spec)
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, detail: err.Error(),
			cause: fmt.Errorf("dry run for %q: %w", spec.Name, err)}
	}
	if report.Checks == nil {
		report.Checks = []DryRunCheck{}
	}
	writeJSON(w, "application/json", http.StatusOK, report)
	return nil
}

// isDryRun reports whether the request asks for a dry run (?dryRun=true or
// 1, in any case).
func isDryRun(r *http.Request) bool {
	for k, v := range r.URL.Query() {
		if strings.EqualFold(k, "dryRun") && len(v) > 0 {
			switch strings.ToLower(v[len(v)-1]) {
			case "true", "1", "":
				return true
			}
		}
	}
	return false
}

// account answers GET /api/account[?ca=NAME]: the ACME account at the first
// default CA or the named one; 404 for a CA that is not configured.
func (s *server) account(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	cb, err := s.caBackend(r)
	if err != nil {
		return err
	}
	info, err := cb.Account(r.Context(), r.URL.Query().Get("ca"))
	return s.writeAccount(w, info, err)
}

// rollover answers POST /api/account/rollover?ca=NAME: the key of the
// account at the CA is replaced; the answer is the account.
func (s *server) rollover(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	cb, err := s.caBackend(r)
	if err != nil {
		return err
	}
	info, err := cb.RolloverAccount(r.Context(), r.URL.Query().Get("ca"))
	if err == nil {
		s.logger.InfoContext(r.Context(), "account key rolled over", "ca", info.CA, "by", p.Name, "trace_id", traceID(r.Context()))
	}
	return s.writeAccount(w, info, err)
}

func (s *server) writeAccount(w http.ResponseWriter, info AccountInfo, err error) error {
	if errors.Is(err, ErrUnknownCA) {
		return &httpError{status: http.StatusNotFound, detail: err.Error()}
	}
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, detail: err.Error(), cause: err}
	}
	if info.CAAIdentities == nil {
		info.CAAIdentities = []string{}
	}
	writeJSON(w, "application/json", http.StatusOK, info)
	return nil
}

// revokeResult is one name's outcome in a bulk revocation.
type revokeResult struct {
	Name string `json:"name"`
	// Status is revoked, notFound or failed.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// bulkRevokeAnswer is the body of POST /api/certificates/revoke.
type bulkRevokeAnswer struct {
	Reason  int            `json:"reason"`
	Revoked int            `json:"revoked"`
	Failed  int            `json:"failed"`
	Results []revokeResult `json:"results"`
}

// revokeMany answers POST /api/certificates/revoke with a body
// {"names": [...], "reason": "superseded"}: each certificate's newest
// version is revoked, in order. 200 when every one was, 207 with the same
// body when some were not.
func (s *server) revokeMany(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	names, reason, errs := parseBulkRevokeRequest(body)
	if errs != nil {
		return validationError(errs)
	}
	ans := bulkRevokeAnswer{Reason: reason, Results: make([]revokeResult, 0, len(names))}
	for _, name := range names {
		res := revokeResult{Name: name, Status: "revoked"}
		err := s.allowCertificate(r.Context(), p, auth.RoleRevoke, "revoke", name)
		if err == nil {
			err = s.backend.Revoke(r.Context(), name, reason)
		}
		var he *httpError
		switch {
		case errors.As(err, &he) && he.status == http.StatusForbidden:
			res.Status, res.Error = "forbidden", fmt.Sprintf("The certificate '%s' is outside the caller's zones.", name)
		case errors.Is(err, vault.ErrNotFound) || errors.As(err, &he) && he.status == http.StatusNotFound:
			res.Status, res.Error = "notFound", fmt.Sprintf("The certificate '%s' does not exist.", name)
		case err != nil:
			res.Status, res.Error = "failed", err.Error()
			s.logger.WarnContext(r.Context(), "bulk revocation failed for a certificate", "certificate", name,
				"by", p.Name, "error", err, "trace_id", traceID(r.Context()))
		}
		if res.Status == "revoked" {
			ans.Revoked++
		} else {
			ans.Failed++
		}
		ans.Results = append(ans.Results, res)
	}
	status := http.StatusOK
	if ans.Failed > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, "application/json", status, ans)
	return nil
}

// parseBulkRevokeRequest reads {"names": [...], "reason": ...}; the reason
// defaults to unspecified.
func parseBulkRevokeRequest(body []byte) ([]string, int, fieldErrors) {
	errs := fieldErrors{}
	obj, msg := jsonObject(body)
	if msg != "" {
		errs.add(bodyField, "%s", msg)
		return nil, 0, errs
	}
	raw := obj["names"]
	var names []string
	switch {
	case absent(raw):
		errs.add("Names", "The Names is required.")
	case raw[0] != '[' || json.Unmarshal(raw, &names) != nil:
		errs.add("Names", "The Names must be an array of certificate names.")
	case len(names) == 0:
		errs.add("Names", "The Names is required.")
	case len(names) > maxBulkNames:
		errs.add("Names", "The Names must have at most %d names; it has %d.", maxBulkNames, len(names))
	default:
		seen := map[string]bool{}
		for _, n := range names {
			switch {
			case !certificate.NamePattern.MatchString(n):
				errs.add("Names", "The Names entry '%s' is not a certificate name.", n)
			case seen[n]:
				errs.add("Names", "The Names has '%s' more than once.", n)
			}
			seen[n] = true
		}
	}
	reason, ok := reasonValue(obj["reason"], 0)
	if !ok {
		errs.add("Reason", revocationReasonMessage)
	}
	if len(errs) > 0 {
		return nil, 0, errs
	}
	return names, reason, nil
}

// reasonValue reads a revocation reason by name, code or numeric string;
// absent is def.
func reasonValue(raw json.RawMessage, def int) (int, bool) {
	if s, ok := stringValue(raw); ok && raw != nil && raw[0] == '"' {
		if code, ok := revocationReasons[strings.ToLower(strings.TrimSpace(s))]; ok {
			return code, true
		}
	}
	code, present, ok := intValue(raw)
	if !present && ok {
		return def, true
	}
	if ok && slices.Contains(slices.Collect(maps.Values(revocationReasons)), code) {
		return code, true
	}
	return 0, false
}

// replace answers POST /api/certificate/{certificateName}/replace: 202 with
// the Location of an operation that issues the certificate again with a new
// key and then revokes the version it replaces. The optional body
// {"reason": ...} defaults to keyCompromise. The caller needs both the issue
// and the revoke role.
func (s *server) replace(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Has(auth.RoleRevoke) {
		return &httpError{status: http.StatusForbidden, empty: true,
			cause: fmt.Errorf("caller %q lacks role %s", p.Name, auth.RoleRevoke)}
	}
	name := r.PathValue("certificateName")
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	reason := 1 // keyCompromise
	if len(strings.TrimSpace(string(body))) > 0 {
		obj, msg := jsonObject(body)
		if msg != "" {
			return validationError(fieldErrors{bodyField: {msg}})
		}
		var ok bool
		if reason, ok = reasonValue(obj["reason"], 1); !ok {
			return validationError(fieldErrors{"Reason": {revocationReasonMessage}})
		}
	}
	if !certificate.NamePattern.MatchString(name) {
		return certificateNotFound(name)
	}
	for _, role := range []auth.Role{auth.RoleIssue, auth.RoleRevoke} {
		if err := s.allowCertificate(r.Context(), p, role, "replace", name); err != nil {
			return err
		}
	}
	cb, err := s.caBackend(r)
	if err != nil {
		return err
	}
	id, err := cb.Replace(r.Context(), name, reason)
	if errors.Is(err, vault.ErrNotFound) {
		return certificateNotFound(name)
	}
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, detail: err.Error(),
			cause: fmt.Errorf("replacing certificate %q for %s: %w", name, p.Name, err)}
	}
	s.accepted(w, r, id)
	return nil
}
