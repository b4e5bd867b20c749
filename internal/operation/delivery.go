package operation

import (
	"encoding/json"
	"time"
)

// StepDelivering is the step in which an issued version is delivered to the
// certificate's destinations, after it was stored.
const StepDelivering Step = "delivering"

// DeliveryStatus is where one delivery is.
type DeliveryStatus string

// The statuses of a delivery. Retrying deliveries are tried again at
// NextAttemptAt; failed ones gave up after the last attempt; superseded ones
// stopped because a newer version of the certificate exists.
const (
	DeliveryPending    DeliveryStatus = "pending"
	DeliveryDelivered  DeliveryStatus = "delivered"
	DeliveryRetrying   DeliveryStatus = "retrying"
	DeliveryFailed     DeliveryStatus = "failed"
	DeliverySuperseded DeliveryStatus = "superseded"
)

// Done reports whether the delivery will not be attempted again.
func (s DeliveryStatus) Done() bool { return s != DeliveryPending && s != DeliveryRetrying }

// Delivery is the delivery of an operation's version to one destination.
type Delivery struct {
	OperationID     string
	Destination     string
	CertificateName string
	VersionID       string
	Status          DeliveryStatus
	Attempts        int
	// Error is the last attempt's error.
	Error string
	// Receipt is what the last attempt did (JSON, the destination's own
	// shape: location, changed, reload command and its output).
	Receipt       json.RawMessage
	CreatedAt     time.Time
	UpdatedAt     time.Time
	DeliveredAt   time.Time
	NextAttemptAt time.Time
}

// DestinationState is what one destination holds of one certificate.
type DestinationState struct {
	Destination        string
	DeliveredVersionID string
	DeliveredAt        time.Time
	LastAttemptAt      time.Time
	// LastError is the last attempt's error, empty once it succeeded.
	LastError string
}
