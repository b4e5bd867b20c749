package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
)

// TestCANameAndReplacement checks the columns of migration 0005: the CA
// name of a version and the version a replace operation replaces.
func TestCANameAndReplacement(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		spec := certificate.Spec{Name: "ca-example-test", DNSNames: []string{"ca.example.test"}, KeyType: "EC",
			KeyCurveName: "P-256", CA: []string{"one", "two"}, PreferredChain: "Root X2"}
		now := time.Now().UTC().Truncate(time.Microsecond)
		v := store.Version{ID: "v1", Name: spec.Name, Spec: spec, ACMEEndpoint: "https://two/dir", CAName: "two",
			Serial: "01", Thumbprint: "T", NotBefore: now, NotAfter: now.Add(time.Hour), CertPEM: "C",
			KeySealed: "k", CreatedAt: now}
		if err := st.InsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
		got, err := st.LatestVersion(ctx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.CAName != "two" || len(got.Spec.CA) != 2 || got.Spec.PreferredChain != "Root X2" {
			t.Errorf("read back CA %q, spec CA %v, preferred chain %q", got.CAName, got.Spec.CA, got.Spec.PreferredChain)
		}

		op := operation.Operation{ID: operation.NewID(), Kind: operation.KindReplace, CertificateName: spec.Name,
			Status: operation.StatusPending, CreatedAt: now, UpdatedAt: now}
		if err := st.InsertOperation(ctx, st.DB(), op, spec); err != nil {
			t.Fatal(err)
		}
		if id, reason, err := st.Replacement(ctx, op.ID); err != nil || id != "" || reason != 0 {
			t.Errorf("Replacement before SetReplacement = %q, %d, %v; want none", id, reason, err)
		}
		if err := st.SetReplacement(ctx, st.DB(), op.ID, "v1", 1); err != nil {
			t.Fatal(err)
		}
		if id, reason, err := st.Replacement(ctx, op.ID); err != nil || id != "v1" || reason != 1 {
			t.Errorf("Replacement = %q, %d, %v; want v1, 1", id, reason, err)
		}
		if err := st.SetReplacement(ctx, st.DB(), operation.NewID(), "v1", 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetReplacement of an unknown operation = %v, want ErrNotFound", err)
		}
		if _, _, err := st.Replacement(ctx, operation.NewID()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Replacement of an unknown operation = %v, want ErrNotFound", err)
		}
	})
}
