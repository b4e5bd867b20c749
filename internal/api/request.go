package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/certkeeper/certkeeper/internal/certificate"
)

// Limits of an issue request.
const (
	maxDNSNames         = 100
	maxProviderNameLen  = 128
	maxTags             = 50
	maxTagNameLen       = 128
	maxTagValueLen      = 256
	bodyField           = "$" // the errors key for the body as a whole, as ASP.NET Core names it
	certificateNameRule = "'^[0-9a-zA-Z-]+$'"
)

// profilePattern is the shape of an ACME profile name; whether the CA offers
// it is the backend's question.
var profilePattern = regexp.MustCompile(`^[0-9A-Za-z._-]{1,64}$`)

// readBody reads a JSON request body. Over the size limit it returns a 413
// error; a non-empty body sent with a Content-Type that is not JSON is a 415
// error. A missing Content-Type is accepted: Acmebot clients omit it.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge,
				detail: fmt.Sprintf("The request body must be at most %d bytes.", s.maxBodyBytes)}
		}
		return nil, &httpError{status: http.StatusBadRequest, detail: "The request body could not be read.",
			cause: fmt.Errorf("reading request body: %w", err)}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && len(bytes.TrimSpace(body)) > 0 {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" && mt != "text/json" && !strings.HasSuffix(mt, "+json") {
			return nil, &httpError{status: http.StatusUnsupportedMediaType,
				detail: "The request body must be JSON, sent with Content-Type: application/json."}
		}
	}
	return body, nil
}

// fieldErrors collects validation messages by PascalCase field name.
type fieldErrors map[string][]string

func (e fieldErrors) add(field, format string, args ...any) {
	e[field] = append(e[field], fmt.Sprintf(format, args...))
}

// jsonObject parses body as exactly one JSON object and returns its members
// by lowercased name, so that names match case-insensitively; of names that
// differ only in case the last wins, as in encoding/json. A body that is not
// one JSON object returns a message for the "$" key.
func jsonObject(body []byte) (map[string]json.RawMessage, string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, "A non-empty request body is required."
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, "The request body is not valid JSON: " + err.Error() + "."
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, "The request body must be a JSON object."
	}
	obj := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "The request body is not valid JSON: " + err.Error() + "."
		}
		key, _ := tok.(string) // inside an object the decoder yields only string keys
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, "The request body is not valid JSON: " + err.Error() + "."
		}
		obj[strings.ToLower(key)] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, "The request body is not valid JSON: " + err.Error() + "."
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "The request body must be one JSON object with nothing after it."
	}
	return obj, ""
}

// absent reports whether a member is missing or null.
func absent(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

// stringValue returns a member that is a JSON string; absent members are "".
func stringValue(raw json.RawMessage) (string, bool) {
	if absent(raw) {
		return "", true
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// intValue returns a member that is a whole JSON number or a string holding
// one ("2048", as Acmebot's dashboard sends). Absent members and empty
// strings report present false.
func intValue(raw json.RawMessage) (n int, present, ok bool) {
	if absent(raw) {
		return 0, false, true
	}
	text := string(raw)
	if raw[0] == '"' {
		if json.Unmarshal(raw, &text) != nil {
			return 0, true, false
		}
		if text = strings.TrimSpace(text); text == "" {
			return 0, false, true
		}
	}
	if n, err := strconv.Atoi(text); err == nil {
		return n, true, true
	}
	// A JSON number such as 2048.0 or 2.048e3 is still a whole number.
	var num json.Number
	if raw[0] != '"' && json.Unmarshal(raw, &num) == nil {
		if f, err := num.Float64(); err == nil && f == float64(int32(f)) {
			return int(f), true, true
		}
	}
	return 0, true, false
}

// boolValue returns a member that is a JSON boolean or the string "true" or
// "false" in any case; absent members and empty strings are false.
func boolValue(raw json.RawMessage) (bool, bool) {
	if absent(raw) {
		return false, true
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true, true
		case "false", "":
			return false, true
		}
	}
	return false, false
}

// parseIssueRequest validates an issue request body and returns the Spec it
// asks for, or every message that applies, by PascalCase field name.
//
// Rules beyond the table in the reference: keyType and keyCurveName match
// case-insensitively; keySize is ignored when keyType is EC and keyCurveName
// when it is RSA (Acmebot's dashboard sends both), though each must still
// have the right JSON type; an empty string is the same as an absent field.
func parseIssueRequest(body []byte) (certificate.Spec, fieldErrors) {
	errs := fieldErrors{}
	obj, msg := jsonObject(body)
	if msg != "" {
		errs.add(bodyField, "%s", msg)
		return certificate.Spec{}, errs
	}
	var spec certificate.Spec
	spec.DNSNames = parseDNSNames(obj["dnsnames"], errs)

	name, ok := stringValue(obj["certificatename"])
	switch {
	case !ok:
		errs.add("CertificateName", "The CertificateName must be a string.")
	case name == "":
		if len(spec.DNSNames) > 0 && errs["DnsNames"] == nil {
			spec.Name = certificate.DeriveName(spec.DNSNames[0])
		}
	case !certificate.NamePattern.MatchString(name):
		if strings.Trim(name, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") != "" {
			errs.add("CertificateName", "The field CertificateName must match the regular expression %s.", certificateNameRule)
		}
		if len(name) > 127 {
			errs.add("CertificateName", "The CertificateName must be at most 127 characters long.")
		}
	default:
		spec.Name = name
	}

	provider, ok := stringValue(obj["dnsprovidername"])
	switch {
	case !ok:
		errs.add("DnsProviderName", "The DnsProviderName must be a string.")
	case utf8.RuneCountInString(provider) > maxProviderNameLen || strings.ContainsFunc(provider, unicode.IsControl):
		errs.add("DnsProviderName", "The DnsProviderName must be at most %d characters long, without control characters.", maxProviderNameLen)
	default:
		spec.DNSProviderName = provider
	}

	parseKey(obj, &spec, errs)

	reuse, ok := boolValue(obj["reusekey"])
	if !ok {
		errs.add("ReuseKey", "The ReuseKey must be true or false.")
	}
	spec.ReuseKey = reuse

	alias, ok := stringValue(obj["dnsalias"])
	if !ok {
		errs.add("DnsAlias", "The DnsAlias must be a string.")
	} else if alias != "" {
		normalized, err := certificate.NormalizeDNSName(alias)
		switch {
		case err != nil:
			errs.add("DnsAlias", "The DnsAlias '%s' is not a valid DNS name: %s.", alias, nameRule(err))
		case strings.HasPrefix(normalized, "*."):
			errs.add("DnsAlias", "The DnsAlias must not be a wildcard name.")
		default:
			spec.DNSAlias = normalized
		}
	}

	profile, ok := stringValue(obj["profile"])
	switch {
	case !ok:
		errs.add("Profile", "The Profile must be a string.")
	case profile != "" && !profilePattern.MatchString(profile):
		errs.add("Profile", "The Profile must be 1 to 64 letters, digits, '.', '_' or '-'.")
	default:
		spec.Profile = profile
	}

	spec.Tags = parseTags(obj["tags"], errs)
	spec.Destinations = parseDestinations(obj["destinations"], errs)
	parseCAFields(obj, &spec, errs)
	if len(errs) > 0 {
		return certificate.Spec{}, errs
	}
	return spec, nil
}

// parseDNSNames validates and normalises the dnsNames member.
func parseDNSNames(raw json.RawMessage, errs fieldErrors) []string {
	const field = "DnsNames"
	if absent(raw) {
		errs.add(field, "The DnsNames is required.")
		return nil
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		errs.add(field, "The DnsNames must be an array of strings.")
		return nil
	}
	if len(items) == 0 {
		errs.add(field, "The DnsNames is required.")
		return nil
	}
	if len(items) > maxDNSNames {
		errs.add(field, "The DnsNames must have at most %d names; it has %d.", maxDNSNames, len(items))
		return nil
	}
	names := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	typeReported := false
	for _, item := range items {
		s, ok := stringValue(item)
		if !ok || absent(item) {
			if !typeReported {
				errs.add(field, "The DnsNames must be an array of strings.")
				typeReported = true
			}
			continue
		}
		name, err := certificate.NormalizeDNSName(s)
		if err != nil {
			errs.add(field, "The DnsNames entry '%s' is not a valid DNS name: %s.", s, nameRule(err))
			continue
		}
		if seen[name] {
			errs.add(field, "The DnsNames has '%s' more than once.", name)
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names
}

// parseKey validates keyType, keySize and keyCurveName into spec.
func parseKey(obj map[string]json.RawMessage, spec *certificate.Spec, errs fieldErrors) {
	keyType, ok := stringValue(obj["keytype"])
	if !ok {
		errs.add("KeyType", "The KeyType must be a string.")
	}
	size, sizeGiven, sizeOK := intValue(obj["keysize"])
	if !sizeOK {
		errs.add("KeySize", "The KeySize must be a whole number.")
	}
	curve, curveOK := stringValue(obj["keycurvename"])
	if !curveOK {
		errs.add("KeyCurveName", "The KeyCurveName must be a string.")
	}
	switch {
	case !ok:
	case keyType == "" || strings.EqualFold(keyType, certificate.KeyTypeRSA):
		spec.KeyType = certificate.KeyTypeRSA
		switch {
		case !sizeOK:
		case !sizeGiven:
			spec.KeySize = 2048
		case size == 2048 || size == 3072 || size == 4096:
			spec.KeySize = size
		default:
			errs.add("KeySize", "The KeySize must be 2048, 3072, or 4096 when KeyType is RSA.")
		}
	case strings.EqualFold(keyType, certificate.KeyTypeEC):
		spec.KeyType = certificate.KeyTypeEC
		switch strings.ToUpper(curve) {
		case "":
			if curveOK {
				spec.KeyCurveName = "P-256"
			}
		case "P-256", "P-384", "P-521":
			spec.KeyCurveName = strings.ToUpper(curve)
		default:
			errs.add("KeyCurveName", "The KeyCurveName must be P-256, P-384, or P-521 when KeyType is EC.")
		}
	default:
		errs.add("KeyType", "The KeyType must be RSA or EC.")
	}
}

// parseTags validates the tags member: an object of strings.
func parseTags(raw json.RawMessage, errs fieldErrors) map[string]string {
	const field = "Tags"
	if absent(raw) {
		return nil
	}
	var tags map[string]string
	if raw[0] != '{' || json.Unmarshal(raw, &tags) != nil {
		errs.add(field, "The Tags must be an object whose values are strings.")
		return nil
	}
	if len(tags) > maxTags {
		errs.add(field, "The Tags must have at most %d entries; it has %d.", maxTags, len(tags))
		return nil
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if n := utf8.RuneCountInString(k); n == 0 || n > maxTagNameLen {
			errs.add(field, "The Tags name '%s' must be 1 to %d characters long.", k, maxTagNameLen)
		}
		if utf8.RuneCountInString(tags[k]) > maxTagValueLen {
			errs.add(field, "The Tags value of '%s' must be at most %d characters long.", k, maxTagValueLen)
		}
	}
	if len(tags) == 0 {
		return nil
	}
	return tags
}

// nameRule is the rule a DNS name broke, from NormalizeDNSName's error.
func nameRule(err error) string {
	if ne, ok := errors.AsType[*certificate.NameError](err); ok {
		return ne.Rule
	}
	return err.Error()
}
