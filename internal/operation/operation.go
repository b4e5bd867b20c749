// Package operation holds the asynchronous operation model: what an issue or
// renew request becomes after the API answered 202, the steps it passes through
// and what GET /api/state/{id} shows about it.
package operation

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"time"
)

// Kind is what an operation does.
type Kind string

// The kinds of operations.
const (
	KindIssue Kind = "issue"
	KindRenew Kind = "renew"
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
	StepOrdering    Step = "ordering"
	StepPresenting  Step = "presenting DNS records"
	StepPropagation Step = "waiting for propagation"
	StepValidating  Step = "validating"
	StepFinalizing  Step = "finalizing"
	StepStoring     Step = "storing"
	StepCleaningUp  Step = "removing DNS records"

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
	Attempt   int
	CreatedAt time.Time
	UpdatedAt time.Time
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
