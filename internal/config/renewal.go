package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Renewal defaults.
const (
	DefaultCheckInterval  = 5 * time.Minute
	DefaultRenewBeforeDay = 30
	DefaultExpiringWithin = 7 * 24 * time.Hour
	DefaultConcurrency    = 5
	// MinCheckInterval is the shortest accepted renewal.checkInterval; tests
	// run the scheduler every second.
	MinCheckInterval = time.Second
)

// Renewal is when and how certificates are renewed automatically.
type Renewal struct {
	// CheckInterval is how often the scheduler looks for due work; default 5m.
	CheckInterval time.Duration `yaml:"checkInterval"`
	// RenewBeforeExpiry is when a certificate without ACME renewal
	// information (RFC 9773) is renewed: a number of days before expiry
	// (Acmebot's meaning, default 30) or a share of its lifetime ("33%").
	RenewBeforeExpiry RenewBefore `yaml:"renewBeforeExpiry"`
	// ExpiringWithin is how close to expiry a certificate that is still not
	// renewed fires the "expiring" webhook event; default 168h (7 days).
	ExpiringWithin time.Duration `yaml:"expiringWithin"`
	// Concurrency bounds how many automatic renewals run at once; default 5.
	Concurrency int `yaml:"concurrency"`
}

// RenewBefore is renewal.renewBeforeExpiry: either Days or Percent is set.
// The zero value means the default, 30 days.
type RenewBefore struct {
	Days    int
	Percent int
}

// String writes r as it is written in YAML: "30" or "33%".
func (r RenewBefore) String() string {
	if r.Percent > 0 {
		return strconv.Itoa(r.Percent) + "%"
	}
	return strconv.Itoa(r.Days)
}

// UnmarshalYAML implements yaml.Unmarshaler: an integer number of days, or
// a percentage such as "33%".
func (r *RenewBefore) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return typeError("line %d: renewBeforeExpiry must be a number of days or a percentage such as \"33%%\"", node.Line)
	}
	v, err := ParseRenewBefore(node.Value)
	if err != nil {
		return typeError("line %d: renewBeforeExpiry: %v", node.Line, err)
	}
	*r = v
	return nil
}

// ParseRenewBefore parses "30" (days) or "33%" (of the lifetime).
func ParseRenewBefore(s string) (RenewBefore, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return RenewBefore{}, fmt.Errorf("%q is not a percentage", s)
		}
		return RenewBefore{Percent: n}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return RenewBefore{}, fmt.Errorf("%q is neither a number of days nor a percentage such as \"33%%\"", s)
	}
	return RenewBefore{Days: n}, nil
}

// defaultRenewal is the renewal block when the file does not change it.
func defaultRenewal() Renewal {
	return Renewal{
		CheckInterval:     DefaultCheckInterval,
		RenewBeforeExpiry: RenewBefore{Days: DefaultRenewBeforeDay},
		ExpiringWithin:    DefaultExpiringWithin,
		Concurrency:       DefaultConcurrency,
	}
}

func (r *Renewal) validate(p *problems) {
	if r.CheckInterval < MinCheckInterval || r.CheckInterval > 24*time.Hour {
		p.add("renewal.checkInterval", "must be between %s and 24h", MinCheckInterval)
	}
	rb := r.RenewBeforeExpiry
	switch {
	case rb.Days != 0 && rb.Percent != 0:
		p.add("renewal.renewBeforeExpiry", "is either days or a percentage, not both")
	case rb.Percent != 0 && (rb.Percent < 1 || rb.Percent > 90):
		p.add("renewal.renewBeforeExpiry", "a percentage must be between 1%% and 90%%")
	case rb.Percent == 0 && (rb.Days < 1 || rb.Days > 365):
		p.add("renewal.renewBeforeExpiry", "must be between 1 and 365 days, or a percentage such as \"33%%\"")
	}
	if r.ExpiringWithin <= 0 {
		p.add("renewal.expiringWithin", "must be positive")
	}
	if r.Concurrency < 1 {
		p.add("renewal.concurrency", "must be at least 1")
	}
}
