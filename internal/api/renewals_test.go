package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/api"
)

// renewalBackend is a fakeBackend that also lists renewals.
type renewalBackend struct {
	*fakeBackend
	renewals []api.Renewal
	err      error
}

var _ api.RenewalLister = (*renewalBackend)(nil)

func (b *renewalBackend) Renewals(context.Context) ([]api.Renewal, error) { return b.renewals, b.err }

func TestRenewals(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	scheduled := api.Renewal{CertificateName: "www-example-com", StatusKind: "scheduled", Status: "Scheduled",
		Message: "Renews at 2026-04-30T00:00:00Z.", NextCheck: at.Add(6 * time.Hour), LastCheckedAt: at,
		RenewAt: at.Add(60 * 24 * time.Hour), Source: "ari", WindowStart: at.Add(59 * 24 * time.Hour),
		WindowEnd: at.Add(61 * 24 * time.Hour), ExpiresOn: at.Add(90 * 24 * time.Hour)}
	pending := api.Renewal{CertificateName: "new", StatusKind: "pending", Status: "Pending", NextCheck: at,
		Failures: 0, OperationID: "0123456789abcdef0123456789abcdef"}
	tests := []struct {
		name    string
		backend api.Backend
		key     string
		status  int
		want    string
	}{
		{
			name:    "listed in Acmebot's shape",
			backend: &renewalBackend{fakeBackend: &fakeBackend{}, renewals: []api.Renewal{scheduled, pending}},
			key:     "reader", status: http.StatusOK,
			want: `[{"certificateName":"www-example-com","status":"Scheduled","statusKind":"scheduled",
				"message":"Renews at 2026-04-30T00:00:00Z.","nextCheck":"2026-03-01T18:00:00+00:00",
				"lastCheckedAt":"2026-03-01T12:00:00+00:00","renewAt":"2026-04-30T12:00:00+00:00","source":"ari",
				"windowStart":"2026-04-29T12:00:00+00:00","windowEnd":"2026-05-01T12:00:00+00:00",
				"expiresOn":"2026-05-30T12:00:00+00:00","failures":0},
				{"certificateName":"new","status":"Pending","statusKind":"pending","message":"",
				"nextCheck":"2026-03-01T12:00:00+00:00","lastCheckedAt":null,"renewAt":null,"source":"",
				"windowStart":null,"windowEnd":null,"expiresOn":null,"failures":0,
				"operationId":"0123456789abcdef0123456789abcdef"}]`,
		},
		{
			name:    "none is []",
			backend: &renewalBackend{fakeBackend: &fakeBackend{}},
			key:     "reader", status: http.StatusOK, want: `[]`,
		},
		{
			name:    "unauthenticated",
			backend: &renewalBackend{fakeBackend: &fakeBackend{}},
			status:  http.StatusUnauthorized,
		},
		{
			name:    "backend without renewals",
			backend: &fakeBackend{},
			key:     "reader", status: http.StatusNotFound,
		},
		{
			name:    "backend fails",
			backend: &renewalBackend{fakeBackend: &fakeBackend{}, err: errors.New("database down")},
			key:     "reader", status: http.StatusInternalServerError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := api.New(api.Options{Backend: tt.backend, Auth: fakeAuth{}})
			rec := serve(t, h, request{method: http.MethodGet, path: "/api/renewals", key: tt.key})
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.want == "" {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got, want any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}
