package certificate

import (
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/net/idna"
)

// NamePattern is the shape of a certificate name: 1 to 127 ASCII letters,
// digits and hyphens.
var NamePattern = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

// Limits on DNS names (RFC 1035 section 2.3.4).
const (
	maxNameLength  = 253
	maxLabelLength = 63
)

// NameError is a DNS name that breaks one of the rules NormalizeDNSName
// enforces.
type NameError struct {
	// Name is the name as given.
	Name string
	// Rule says which rule failed, as a lowercase phrase such as
	// "label \"a_b\" has a character other than a letter, digit or hyphen".
	Rule string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid DNS name %q: %s", e.Name, e.Rule)
}

// unicodeDots are the full stops IDNA (UTS #46) maps to ".".
var unicodeDots = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".")

// NormalizeDNSName returns s as certkeeper stores DNS names: surrounding
// spaces and one trailing dot removed, lowercase, Unicode labels converted to
// punycode with IDNA (UTS #46 lookup profile). It enforces: at most 253
// characters; at least two labels (two besides the wildcard label for a
// wildcard name); labels of 1 to 63 letters, digits and hyphens, not starting
// or ending with a hyphen; "xn--" labels that are valid punycode; a last
// label that is not all digits (an IP address is not a DNS name); and "*"
// only as the whole leftmost label. The error is a *NameError saying which
// rule failed. NormalizeDNSName of its own output returns that output.
func NormalizeDNSName(s string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", &NameError{Name: s, Rule: fmt.Sprintf(format, args...)}
	}
	name := strings.TrimSpace(s)
	name = strings.TrimSuffix(unicodeDots.Replace(name), ".")
	if name == "" {
		return fail("it is empty")
	}
	name = strings.ToLower(name)
	wildcard := false
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		wildcard = true
		name = rest
	}
	labels := strings.Split(name, ".")
	for i, label := range labels {
		if label == "" {
			return fail("it has an empty label")
		}
		if strings.Contains(label, "*") {
			return fail("%q is allowed only as the whole leftmost label", "*")
		}
		ascii, err := labelToASCII(label)
		if err != nil {
			return fail("label %q is not a valid internationalised label (%v)", label, err)
		}
		if ascii == "" {
			return fail("label %q is empty after IDNA mapping", label)
		}
		if len(ascii) > maxLabelLength {
			return fail("label %q is longer than %d characters", ascii, maxLabelLength)
		}
		if !isLDH(ascii) {
			return fail("label %q has a character other than a letter, digit or hyphen", ascii)
		}
		if ascii[0] == '-' || ascii[len(ascii)-1] == '-' {
			return fail("label %q starts or ends with a hyphen", ascii)
		}
		labels[i] = ascii
	}
	if len(labels) < 2 {
		if wildcard {
			return fail("a wildcard name needs at least two labels after %q", "*.")
		}
		return fail("it needs at least two labels")
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fail("the last label %q is all digits", labels[len(labels)-1])
	}
	name = strings.Join(labels, ".")
	if wildcard {
		name = "*." + name
	}
	if len(name) > maxNameLength {
		return fail("it is longer than %d characters", maxNameLength)
	}
	return name, nil
}

// labelToASCII converts one lowercase label to ASCII. ASCII labels are kept
// as they are, except that "xn--" labels must be valid punycode; others go
// through IDNA. Labels such as "r3---sn" stay valid, which a whole-name IDNA
// conversion would reject.
func labelToASCII(label string) (string, error) {
	if isASCII(label) {
		if strings.HasPrefix(label, "xn--") {
			if _, err := idna.Lookup.ToUnicode(label); err != nil {
				return "", err
			}
		}
		return label, nil
	}
	ascii, err := idna.Lookup.ToASCII(label)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(ascii, "xn--") {
		// Check the round trip so that normalising the output again
		// succeeds.
		if _, err := idna.Lookup.ToUnicode(ascii); err != nil {
			return "", err
		}
	}
	return strings.ToLower(ascii), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isLDH reports whether s has only ASCII letters, digits and hyphens.
func isLDH(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// DeriveName returns the certificate name Acmebot derives from the first DNS
// name of a request: "*" becomes "wildcard" and "." becomes "-", so
// "*.example.com" becomes "wildcard-example-com". Any other character outside
// NamePattern becomes "-", and the result is cut to 127 characters, so the
// result of a name NormalizeDNSName accepted always matches NamePattern.
func DeriveName(firstDNSName string) string {
	var b strings.Builder
	for _, r := range firstDNSName {
		switch {
		case r == '*':
			b.WriteString("wildcard")
		case r < 0x80 && isLDH(string(r)):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > 127 {
		name = name[:127]
	}
	return name
}
