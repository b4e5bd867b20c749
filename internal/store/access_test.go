package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/store"
)

func TestManagedAPIKeys(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		created := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
		k := store.APIKey{ID: "k0123456789abcdef", Name: "team-a", Hash: "aa11", Roles: []string{"Acmebot.IssueCertificate"},
			Zones: []string{"example.test"}, Source: store.KeySourceManaged, CreatedBy: "key:admin",
			CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour)}
		if err := st.InsertAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		for name, dup := range map[string]store.APIKey{
			"same name": {ID: "other1", Name: "team-a", Hash: "bb"},
			"same hash": {ID: "other2", Name: "b", Hash: "aa11"},
			"same id":   {ID: k.ID, Name: "c", Hash: "cc"},
		} {
			if err := st.InsertAPIKey(ctx, dup); !errors.Is(err, store.ErrExists) {
				t.Errorf("InsertAPIKey(%s) = %v; want ErrExists", name, err)
			}
		}
		got, err := st.APIKeyByHash(ctx, "aa11")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(k, got); diff != "" {
			t.Errorf("APIKeyByHash (-want +got):\n%s", diff)
		}
		for _, ref := range []string{k.ID, k.Name} {
			if got, err := st.APIKey(ctx, ref); err != nil || got.ID != k.ID {
				t.Errorf("APIKey(%q) = %v, %v", ref, got.ID, err)
			}
		}

		used := created.Add(time.Hour)
		if err := st.TouchAPIKey(ctx, k.ID, used); err != nil {
			t.Fatal(err)
		}
		if err := st.TouchAPIKey(ctx, k.ID, used.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.APIKeyByHash(ctx, "aa11"); !got.LastUsedAt.Equal(used) {
			t.Errorf("LastUsedAt = %v; want %v (an earlier use does not overwrite a later one)", got.LastUsedAt, used)
		}

		// A configured key replaces a managed key of the same name, and
		// survives; other managed keys are left alone.
		if err := st.InsertAPIKey(ctx, store.APIKey{ID: "k2", Name: "ci", Hash: "dd", Source: store.KeySourceManaged}); err != nil {
			t.Fatal(err)
		}
		if err := st.SyncConfigAPIKeys(ctx, []store.APIKey{{Name: "ci", Hash: "ee", Roles: []string{"Certkeeper.Admin"}}}); err != nil {
			t.Fatal(err)
		}
		keys, err := st.APIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, k := range keys {
			names = append(names, k.Name+"/"+k.Source+"/"+k.Hash)
		}
		if diff := cmp.Diff([]string{"ci/config/ee", "team-a/managed/aa11"}, names); diff != "" {
			t.Errorf("keys after sync (-want +got):\n%s", diff)
		}

		if err := st.DeleteAPIKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.APIKeyByHash(ctx, "aa11"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("APIKeyByHash after delete = %v; want ErrNotFound", err)
		}
		if err := st.DeleteAPIKey(ctx, k.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteAPIKey twice = %v; want ErrNotFound", err)
		}
	})
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		var all []store.AuditEntry
		for i := range 25 {
			e := store.AuditEntry{At: base.Add(time.Duration(i) * time.Second), ActorKind: "key", ActorID: "key:k" + fmt.Sprint(i%3),
				Actor: fmt.Sprintf("key-%d", i%3), Action: "certificate.issue", Certificate: fmt.Sprintf("cert-%d", i%5),
				Operation: fmt.Sprintf("%032d", i), Address: "127.0.0.1", Result: "accepted", Status: 202, TraceID: "t"}
			if i%4 == 0 {
				e.Action, e.Result, e.Status, e.Detail = "operation.failed", "failed", 0, "CA said no"
			}
			got, err := st.AppendAudit(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID == "" {
				t.Fatal("AppendAudit set no id")
			}
			all = append([]store.AuditEntry{got}, all...) // newest first
		}
		tests := []struct {
			name   string
			filter store.AuditFilter
			want   func(store.AuditEntry) bool
		}{
			{"all", store.AuditFilter{}, func(store.AuditEntry) bool { return true }},
			{"certificate", store.AuditFilter{Certificate: "cert-2"}, func(e store.AuditEntry) bool { return e.Certificate == "cert-2" }},
			{"actor by name", store.AuditFilter{Actor: "key-1"}, func(e store.AuditEntry) bool { return e.Actor == "key-1" }},
			{"actor by id", store.AuditFilter{Actor: "key:k2"}, func(e store.AuditEntry) bool { return e.ActorID == "key:k2" }},
			{"action and certificate", store.AuditFilter{Action: "operation.failed", Certificate: "cert-0"},
				func(e store.AuditEntry) bool { return e.Action == "operation.failed" && e.Certificate == "cert-0" }},
		}
		for _, tt := range tests {
			var want []store.AuditEntry
			for _, e := range all {
				if tt.want(e) {
					want = append(want, e)
				}
			}
			// Page through in pages of 4.
			var got []store.AuditEntry
			f := tt.filter
			f.Limit = 4
			for {
				page, err := st.Audit(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, page...)
				if len(page) < f.Limit {
					break
				}
				f.Before = page[len(page)-1].ID
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}
