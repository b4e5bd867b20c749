package api

import (
	"context"
	"net/http"
	"time"
)

// Health routes (issue 10). Issue 5 adds /healthz and /readyz too; the two
// are reconciled when both are merged.

// readyTimeout bounds the readiness check.
const readyTimeout = 5 * time.Second

// healthz answers GET /healthz, anonymously: 200 while the process serves
// HTTP at all. It checks nothing else, so that a liveness probe restarts only
// a process that is truly stuck.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, "application/json", http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers GET /readyz, anonymously: 200 when Options.Ready (the
// database) answers within five seconds, else a 503 problem. A load
// balancer sends requests only to ready replicas.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			return &httpError{status: http.StatusServiceUnavailable, detail: "The database does not answer.", cause: err}
		}
	}
	writeJSON(w, "application/json", http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
