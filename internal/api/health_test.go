package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/certkeeper/certkeeper/internal/api"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	down := func(context.Context) error { return errors.New("connection refused") }
	up := func(context.Context) error { return nil }
	tests := []struct {
		name   string
		ready  func(context.Context) error
		path   string
		status int
		body   string
	}{
		{"healthz while the database is down", down, "/healthz", http.StatusOK, `{"status":"ok"}`},
		{"readyz with the database up", up, "/readyz", http.StatusOK, `{"status":"ready"}`},
		{"readyz without a check", nil, "/readyz", http.StatusOK, `{"status":"ready"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := api.New(api.Options{Backend: &fakeBackend{}, Auth: fakeAuth{}, Ready: tt.ready})
			// No key: the probes are anonymous.
			rec := serve(t, h, request{method: http.MethodGet, path: tt.path})
			if rec.Code != tt.status {
				t.Fatalf("status = %d; want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if got := rec.Body.String(); got != tt.body+"\n" && got != tt.body {
				t.Errorf("body = %q; want %s", got, tt.body)
			}
		})
	}

	t.Run("readyz with the database down", func(t *testing.T) {
		t.Parallel()
		h := api.New(api.Options{Backend: &fakeBackend{}, Auth: fakeAuth{}, Ready: down})
		rec := serve(t, h, request{method: http.MethodGet, path: "/readyz"})
		wantProblem(t, rec, http.StatusServiceUnavailable, map[string]any{
			"type":   "about:blank",
			"title":  "Service Unavailable",
			"detail": "The database does not answer.",
		})
	})
	t.Run("wrong method", func(t *testing.T) {
		t.Parallel()
		h := api.New(api.Options{Backend: &fakeBackend{}, Auth: fakeAuth{}})
		rec := serve(t, h, request{method: http.MethodPost, path: "/healthz"})
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST /healthz status = %d; want 405", rec.Code)
		}
	})
}
