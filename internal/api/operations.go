package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/operation"
)

// operationView is an operation as GET /api/operations/{id} shows it.
type operationView struct {
	ID              string           `json:"id"`
	Kind            operation.Kind   `json:"kind"`
	CertificateName string           `json:"certificateName"`
	Status          operation.Status `json:"status"`
	CurrentStep     operation.Step   `json:"currentStep,omitempty"`
	Steps           []stepView       `json:"steps"`
	FailedStep      operation.Step   `json:"failedStep,omitempty"`
	Error           string           `json:"error,omitempty"`
	VersionID       string           `json:"versionId,omitempty"`
	Attempt         int              `json:"attempt"`
	CreatedAt       time.Time        `json:"createdAt"`
	UpdatedAt       time.Time        `json:"updatedAt"`
	// Deliveries are the deliveries to destinations (issue 8).
	Deliveries []deliveryView `json:"deliveries,omitempty"`
}

type stepView struct {
	Name       operation.Step `json:"name"`
	StartedAt  time.Time      `json:"startedAt"`
	FinishedAt *time.Time     `json:"finishedAt,omitempty"`
	// DurationMs is set once the step finished.
	DurationMs *int64 `json:"durationMs,omitempty"`
	Error      string `json:"error,omitempty"`
	// CA is the CA the step was done with.
	CA string `json:"ca,omitempty"`
}

func newOperationView(op operation.Operation) *operationView {
	v := &operationView{
		ID: op.ID, Kind: op.Kind, CertificateName: op.CertificateName, Status: op.Status,
		Steps: make([]stepView, 0, len(op.Steps)), FailedStep: op.FailedStep, Error: op.Error,
		VersionID: op.VersionID, Attempt: op.Attempt, CreatedAt: op.CreatedAt, UpdatedAt: op.UpdatedAt,
		Deliveries: newDeliveryViews(op.Deliveries),
	}
	for _, st := range op.Steps {
		sv := stepView{Name: st.Name, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, Error: st.Error, CA: st.CA}
		if st.FinishedAt != nil {
			ms := st.FinishedAt.Sub(st.StartedAt).Milliseconds()
			sv.DurationMs = &ms
		}
		v.Steps = append(v.Steps, sv)
	}
	if n := len(op.Steps); n > 0 && !op.Status.Done() && op.Steps[n-1].FinishedAt == nil {
		v.CurrentStep = op.Steps[n-1].Name
	}
	return v
}

// operation answers GET /api/operations/{id} (Acmebot v5's name for
// /api/state/{id}): the same status codes, but the 202 and 200 carry the
// operation with its steps, and the 500 problem carries it as "operation".
func (s *server) operation(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	op, err := s.lookupOperation(r)
	if err != nil {
		return err
	}
	id := op.ID
	if err := s.mayPoll(p, op); err != nil {
		return err
	}
	view := newOperationView(op)
	switch op.Status {
	case operation.StatusPending, operation.StatusRunning:
		w.Header().Set("Location", s.baseURL(r)+"/api/operations/"+id)
		writeJSON(w, "application/json", http.StatusAccepted, view)
	case operation.StatusSucceeded:
		writeJSON(w, "application/json", http.StatusOK, view)
	case operation.StatusFailed:
		he := operationFailed(op)
		he.operation = view
		return he
	default:
		return fmt.Errorf("operation %s has unknown status %q", id, op.Status)
	}
	return nil
}
