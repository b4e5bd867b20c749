package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/certkeeper/certkeeper/internal/auth"
)

// Renewal is one certificate's automatic renewal as GET /api/renewals shows
// it.
type Renewal struct {
	CertificateName string
	// StatusKind is the machine-readable state (pending, scheduled,
	// waiting, renewing, failed, needsAttention, revoked); Status the same
	// for people; Message says what is planned or what went wrong.
	StatusKind string
	Status     string
	Message    string
	// NextCheck is when the scheduler looks at the certificate next;
	// LastCheckedAt when it last did (zero: never).
	NextCheck     time.Time
	LastCheckedAt time.Time
	// RenewAt is the planned renewal (zero: not known yet), chosen from
	// Source: "ari" (the CA's window WindowStart..WindowEnd) or "lifetime".
	RenewAt                time.Time
	Source                 string
	WindowStart, WindowEnd time.Time
	// ExpiresOn is when the newest version expires.
	ExpiresOn time.Time
	// Failures counts consecutive failed renewals; OperationID is the
	// renewal in flight, if any.
	Failures    int
	OperationID string
}

// RenewalLister is what a Backend implements to serve GET /api/renewals
// (issue 5); without it the route answers 404.
type RenewalLister interface {
	// Renewals returns every certificate's renewal, ordered by name.
	Renewals(ctx context.Context) ([]Renewal, error)
}

// renewalItem is one item of GET /api/renewals: Acmebot v5's fields
// (certificateName, status, statusKind, message, nextCheck, lastCheckedAt)
// and certkeeper's plan behind them.
type renewalItem struct {
	CertificateName string  `json:"certificateName"`
	Status          string  `json:"status"`
	StatusKind      string  `json:"statusKind"`
	Message         string  `json:"message"`
	NextCheck       *string `json:"nextCheck"`
	LastCheckedAt   *string `json:"lastCheckedAt"`
	RenewAt         *string `json:"renewAt"`
	Source          string  `json:"source"`
	WindowStart     *string `json:"windowStart"`
	WindowEnd       *string `json:"windowEnd"`
	ExpiresOn       *string `json:"expiresOn"`
	Failures        int     `json:"failures"`
	OperationID     string  `json:"operationId,omitempty"`
}

// renewals answers GET /api/renewals; none is [].
func (s *server) renewals(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	lister, ok := s.backend.(RenewalLister)
	if !ok {
		return &httpError{status: http.StatusNotFound, detail: "There is no resource at " + r.URL.Path + "."}
	}
	list, err := lister.Renewals(r.Context())
	if err != nil {
		return fmt.Errorf("listing renewals: %w", err)
	}
	items := make([]renewalItem, 0, len(list))
	for _, rn := range list {
		items = append(items, renewalItem{
			CertificateName: rn.CertificateName, Status: rn.Status, StatusKind: rn.StatusKind, Message: rn.Message,
			NextCheck: timeOrNull(rn.NextCheck), LastCheckedAt: timeOrNull(rn.LastCheckedAt),
			RenewAt: timeOrNull(rn.RenewAt), Source: rn.Source,
			WindowStart: timeOrNull(rn.WindowStart), WindowEnd: timeOrNull(rn.WindowEnd),
			ExpiresOn: timeOrNull(rn.ExpiresOn), Failures: rn.Failures, OperationID: rn.OperationID,
		})
	}
	writeJSON(w, "application/json", http.StatusOK, items)
	return nil
}

// timeOrNull writes t as Acmebot does, or null when it is zero.
func timeOrNull(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(acmebotTime)
	return &s
}
