// Package operation holds the asynchronous operation model: what an issue or
// renew request becomes after the API answered 202, the steps it passes through
// and what GET /api/state/{id} shows about it.
package operation

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"time"
)

// Kind is what an operation does.
type Kind string

// The kinds of operations.
const (
	KindIssue Kind = "issue"
	KindRenew Kind = "renew"
	// KindReplace issues a new version with a new key, then revokes the
	// version it replaces.
	KindReplace Kind = "replace"
)

// Status is where an operation is in its life.
type Status string

// The statuses of an operation. Pending and Running answer 202 on
// /api/state, Succeeded answers 200 and Failed answers 500.
const (
	StatusPending   Status = "pending"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
)

// Done reports whether the status is terminal.
func (s Status) Done() bool { return s == StatusSucceeded || s == StatusFailed }

// Step names one stage of an issuance. The names are shown to people.
type Step string

// The steps of an issuance, in the order they normally happen.
const (
	StepCheckingDNS Step = "checking DNS"
	StepOrdering    Step = "ordering"
	StepPresenting  Step = "presenting DNS records"
	StepPropagation Step = "waiting for propagation"
	StepValidating  Step = "validating"
	StepFinalizing  Step = "finalizing"
	StepStoring     Step = "storing"
	StepCleaningUp  Step = "removing DNS records"
	// StepCAA checks the names' CAA records (RFC 8659) against the CA about
	// to be asked.
	StepCAA Step = "checking CAA"
	// StepFailover records that a CA failed in a way another CA could fix
	// and that the next CA is tried; its record carries the CA given up
	// and why.
	StepFailover Step = "trying the next CA"
	// StepRevoking revokes the version a replace operation replaced.
	StepRevoking Step = "revoking the replaced version"

	// StepWaiting comes first when another operation of the same
	// certificate was running: one issuance per certificate at a time.
	StepWaiting Step = "waiting for another operation of this certificate"
)

// StepRecord is one step an operation passed through.
type StepRecord struct {
	Name       Step       `json:"name"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	Error      string     `json:"error,omitempty"`
	// CA is the name of the certificate authority the step was done with,
	// when it concerns one.
	CA string `json:"ca,omitempty"`
}

// Operation is one asynchronous issue or renew request.
type Operation struct {
	ID              string
	Kind            Kind
	CertificateName string
	Status          Status
	Steps           []StepRecord
	// FailedStep and Error are set when Status is StatusFailed.
	FailedStep Step
	Error      string
	// VersionID is the stored certificate version once Status is StatusSucceeded.
	VersionID string
	// Attempt counts how many times a worker started this operation; more than
	// one means it was resumed after a crash.
	Attempt int
	// CreatedBy is the actor id of who asked for it (auth.Principal.Actor);
	// empty when certkeeper did on its own. CreatedByName is the name people
	// read (the key name, the token subject).
	CreatedBy     string
	CreatedByName string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Deliveries are the deliveries of the version to its destinations.
	Deliveries []Delivery
}

// Failure is what a failed operation tells people: "<step>: <error>", or
// whichever of the two is set.
func (o Operation) Failure() string {
	switch {
	case o.FailedStep == "":
		return o.Error
	case o.Error == "":
		return string(o.FailedStep)
	}
	return string(o.FailedStep) + ": " + o.Error
}

// StepError is the error text stored for a failure at step: err's text
// without a leading "<step>: ", which Failure and every view put back, so that
// the step is named once.
func StepError(step Step, err error) string {
	return strings.TrimPrefix(err.Error(), string(step)+": ")
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// NewID returns a new operation id: 32 lowercase hex characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of an operation id.
func ValidID(s string) bool { return idPattern.MatchString(s) }
