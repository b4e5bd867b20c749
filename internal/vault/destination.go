package vault

import (
	"context"
	"errors"
	"time"
)

// Destination is a place certificates are delivered to besides the built-in
// store: a directory of PEM files, a HashiCorp Vault or OpenBao KV v2 mount,
// an Azure Key Vault. The built-in store stays the source of truth; a
// destination holds one current version per certificate name.
// Implementations are safe for concurrent use.
type Destination interface {
	// Deliver makes v (with its private key) the current version of v.Name
	// at the destination. Delivering the version the destination holds
	// already changes nothing and reports Receipt.Changed false. A
	// destination that can tell it holds a newer version of v.Name returns
	// ErrSuperseded and changes nothing.
	Deliver(ctx context.Context, v Version) (Receipt, error)
	// Current returns what the destination holds for name: at least the
	// certificate, the chain and the private key, and the version id where
	// the destination records it. It returns ErrNotFound when the
	// destination holds nothing under name.
	Current(ctx context.Context, name string) (Version, error)
}

// ErrSuperseded is returned by Destination.Deliver when the destination
// holds a newer version of the certificate than the one delivered: one whose
// leaf certificate's NotBefore is later.
var ErrSuperseded = errors.New("the destination holds a newer version")

// Receipt is what one delivery did.
type Receipt struct {
	// Changed is false when the destination held the version already.
	Changed bool `json:"changed"`
	// Location says where the version went: a directory, a KV path and its
	// secret version, a Key Vault certificate id.
	Location string `json:"location,omitempty"`
	// Command is the reload command run after the change, if any.
	Command *CommandResult `json:"command,omitempty"`
}

// CommandResult is the outcome of a command a destination ran.
type CommandResult struct {
	Command  string        `json:"command"`
	ExitCode int           `json:"exitCode"`
	Output   string        `json:"output"`
	Duration time.Duration `json:"durationNs"`
}

// Deliverer adapts the built-in store to Destination, so that the
// conformance suite checks it too: Deliver stores the version, Current
// returns the newest one.
type Deliverer struct{ *Builtin }

var _ Destination = Deliverer{}

// Deliver implements Destination.
func (d Deliverer) Deliver(ctx context.Context, v Version) (Receipt, error) {
	if latest, err := d.Latest(ctx, v.Name); err == nil && latest.ID != v.ID && latest.NotBefore.After(v.NotBefore) {
		return Receipt{}, ErrSuperseded
	}
	err := d.Put(ctx, v)
	if errors.Is(err, ErrExists) {
		return Receipt{Location: "builtin"}, nil
	}
	if err != nil {
		return Receipt{}, err
	}
	return Receipt{Changed: true, Location: "builtin"}, nil
}

// Current implements Destination.
func (d Deliverer) Current(ctx context.Context, name string) (Version, error) {
	return d.Latest(ctx, name)
}
