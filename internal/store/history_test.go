package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
)

func TestVersionHistory(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		spec := certificate.Spec{Name: "www-example-test", DNSNames: []string{"www.example.test"}, KeyType: "EC", KeyCurveName: "P-256"}
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		v1 := store.Version{ID: "v1", Name: spec.Name, Spec: spec, ACMEEndpoint: "https://ca/dir", Serial: "01",
			Thumbprint: "T1", NotBefore: base, NotAfter: base.Add(90 * 24 * time.Hour), CertPEM: "C1", ChainPEM: "CH",
			KeySealed: "v1:sealed", CertURL: "https://ca/cert/1", CreatedAt: base}
		v2 := v1
		v2.ID, v2.Serial, v2.Thumbprint, v2.CreatedAt = "v2", "02", "T2", base.Add(24*time.Hour)
		v3 := v1
		v3.ID, v3.Serial, v3.Thumbprint, v3.CreatedAt = "v3", "03", "T3", base.Add(48*time.Hour)
		other := v1
		other.ID, other.Name, other.Spec.Name = "o1", "api-example-test", "api-example-test"
		for _, v := range []store.Version{v2, other, v1, v3} {
			if err := st.InsertVersion(ctx, v); err != nil {
				t.Fatalf("InsertVersion(%s): %v", v.ID, err)
			}
		}
		got, err := st.Versions(ctx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.Version{v3, v2, v1}, got); diff != "" {
			t.Errorf("Versions, newest first (-want +got):\n%s", diff)
		}
		if _, err := st.Versions(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Versions(nope) = %v, want ErrNotFound", err)
		}
	})
}

func TestOperationList(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		mk := func(i int, name string, kind operation.Kind, status operation.Status) operation.Operation {
			at := base.Add(time.Duration(i) * time.Minute)
			return operation.Operation{ID: operation.NewID(), Kind: kind, CertificateName: name, Status: status,
				Steps: []operation.StepRecord{}, CreatedAt: at, UpdatedAt: at}
		}
		ops := []operation.Operation{
			mk(0, "a", operation.KindIssue, operation.StatusSucceeded),
			mk(1, "b", operation.KindIssue, operation.StatusFailed),
			mk(2, "a", operation.KindRenew, operation.StatusRunning),
			mk(3, "b", operation.KindIssue, operation.StatusPending),
			mk(4, "a", operation.KindRenew, operation.StatusFailed),
		}
		for _, op := range ops {
			if err := st.InsertOperation(ctx, st.DB(), op, certificate.Spec{Name: op.CertificateName}); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(list []operation.Operation) []string {
			out := []string{}
			for _, op := range list {
				out = append(out, op.ID)
			}
			return out
		}
		tests := []struct {
			name   string
			filter store.OperationFilter
			want   []operation.Operation
		}{
			{"every operation, newest first", store.OperationFilter{}, []operation.Operation{ops[4], ops[3], ops[2], ops[1], ops[0]}},
			{"one certificate", store.OperationFilter{CertificateName: "a"}, []operation.Operation{ops[4], ops[2], ops[0]}},
			{"statuses", store.OperationFilter{Statuses: []operation.Status{operation.StatusPending, operation.StatusRunning}},
				[]operation.Operation{ops[3], ops[2]}},
			{"certificate and status", store.OperationFilter{CertificateName: "b", Statuses: []operation.Status{operation.StatusFailed}},
				[]operation.Operation{ops[1]}},
			{"limit", store.OperationFilter{Limit: 2}, []operation.Operation{ops[4], ops[3]}},
			{"unknown certificate", store.OperationFilter{CertificateName: "zz"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := st.Operations(ctx, tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(ids(tt.want), ids(got)); diff != "" {
					t.Errorf("Operations(%+v) ids (-want +got):\n%s", tt.filter, diff)
				}
			})
		}
		got, err := st.Operations(ctx, store.OperationFilter{CertificateName: "a", Limit: 1})
		if err != nil || len(got) != 1 {
			t.Fatalf("Operations = %v, %v", got, err)
		}
		if diff := cmp.Diff(ops[4], got[0], cmpIgnoreUpdated); diff != "" {
			t.Errorf("listed operation (-want +got):\n%s", diff)
		}
	})
}
