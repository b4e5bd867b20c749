package issuer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Set is the configured certificate authorities by name, and the order in
// which they are tried for a certificate that names none. It is safe for
// concurrent use; it does not change after NewSet.
type Set struct {
	issuers  []*Issuer
	defaults []string
}

// NewSet returns the set of issuers, each with a unique non-empty name;
// defaults names at least one of them.
func NewSet(issuers []*Issuer, defaults []string) (*Set, error) {
	s := &Set{issuers: slices.Clone(issuers), defaults: slices.Clone(defaults)}
	seen := map[string]bool{}
	var errs []error
	for _, i := range issuers {
		switch {
		case i.Name() == "":
			errs = append(errs, fmt.Errorf("the CA at %s has no name", i.DirectoryURL()))
		case seen[i.Name()]:
			errs = append(errs, fmt.Errorf("CA name %q is used more than once", i.Name()))
		}
		seen[i.Name()] = true
	}
	if len(defaults) == 0 {
		errs = append(errs, errors.New("no default CA"))
	}
	for _, d := range defaults {
		if !seen[d] {
			errs = append(errs, fmt.Errorf("default CA %q is not configured", d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring CAs: %w", err)
	}
	return s, nil
}

// Get returns the CA called name.
func (s *Set) Get(name string) (*Issuer, bool) {
	for _, i := range s.issuers {
		if i.Name() == name {
			return i, true
		}
	}
	return nil, false
}

// All returns every CA in configuration order.
func (s *Set) All() []*Issuer { return slices.Clone(s.issuers) }

// Names returns every CA's name in configuration order.
func (s *Set) Names() []string {
	out := make([]string, len(s.issuers))
	for n, i := range s.issuers {
		out[n] = i.Name()
	}
	return out
}

// Defaults returns the names tried for a certificate that names no CA.
func (s *Set) Defaults() []string { return slices.Clone(s.defaults) }

// Default returns the first default CA: the one GET /api/account describes
// without ?ca=.
func (s *Set) Default() *Issuer {
	i, _ := s.Get(s.defaults[0])
	return i
}

// UnknownCAError is returned for a CA name that is not configured.
type UnknownCAError struct {
	Name string
	// Known are the configured names.
	Known []string
}

func (e *UnknownCAError) Error() string {
	return fmt.Sprintf("the CA %q is not configured (configured: %s)", e.Name, strings.Join(e.Known, ", "))
}

// Candidates returns the CAs to try for a certificate that names names, in
// order, or the default CAs when names is empty. An unknown name is an
// *UnknownCAError.
func (s *Set) Candidates(names []string) ([]*Issuer, error) {
	if len(names) == 0 {
		names = s.defaults
	}
	out := make([]*Issuer, 0, len(names))
	for _, n := range names {
		i, ok := s.Get(n)
		if !ok {
			return nil, &UnknownCAError{Name: n, Known: s.Names()}
		}
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out, nil
}

// ForVersion returns the CA that issued a stored version: the one named
// caName, else the one with directoryURL (versions stored before CAs had
// names, or a CA renamed since). It fails when neither is configured.
func (s *Set) ForVersion(caName, directoryURL string) (*Issuer, error) {
	if i, ok := s.Get(caName); ok && (directoryURL == "" || i.DirectoryURL() == directoryURL) {
		return i, nil
	}
	for _, i := range s.issuers {
		if i.DirectoryURL() == directoryURL {
			return i, nil
		}
	}
	name := caName
	if name == "" {
		name = "unnamed"
	}
	return nil, fmt.Errorf("the CA that issued it (%s, %s) is no longer configured", name, directoryURL)
}
