package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/store"
)

func TestDeliveryLease(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		until := time.Now().Add(time.Minute)
		tests := []struct {
			owner string
			until time.Time
			want  bool
		}{
			{"a", until, true},                      // free
			{"b", until, false},                     // a holds it
			{"a", until.Add(time.Second), true},     // the holder renews
			{"b", time.Now().Add(time.Hour), false}, // still a's
		}
		for i, tt := range tests {
			got, err := st.AcquireDeliveryLease(ctx, "www", "web", tt.owner, tt.until)
			if err != nil || got != tt.want {
				t.Errorf("step %d: Acquire(%s) = %v, %v; want %v", i, tt.owner, got, err, tt.want)
			}
		}
		if err := st.ReleaseDeliveryLease(ctx, "www", "web", "a"); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.AcquireDeliveryLease(ctx, "www", "web", "b", until); !got {
			t.Error("b could not take the released lease")
		}
		// A lease that ran out is taken over.
		if got, _ := st.AcquireDeliveryLease(ctx, "www", "kv", "c", time.Now().Add(-time.Second)); !got {
			t.Fatal("c could not take a free lease")
		}
		if got, _ := st.AcquireDeliveryLease(ctx, "www", "kv", "d", until); !got {
			t.Error("d could not take c's expired lease")
		}
	})
}

func TestDeliveries(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		if err := st.EnsureDeliveries(ctx, "op1", "www", "v1", []string{"web", "kv"}); err != nil {
			t.Fatal(err)
		}
		d, err := st.Delivery(ctx, "op1", "web")
		if err != nil || d.Status != operation.DeliveryPending || d.VersionID != "v1" {
			t.Fatalf("Delivery = %+v, %v", d, err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		d.Status, d.Attempts, d.DeliveredAt, d.Receipt = operation.DeliveryDelivered, 1, now, []byte(`{"changed":true}`)
		if err := st.RecordDelivery(ctx, st.DB(), d); err != nil {
			t.Fatal(err)
		}
		k, _ := st.Delivery(ctx, "op1", "kv")
		k.Status, k.Attempts, k.Error = operation.DeliveryRetrying, 1, "connection refused"
		if err := st.RecordDelivery(ctx, st.DB(), k); err != nil {
			t.Fatal(err)
		}
		// Ensuring again changes nothing.
		if err := st.EnsureDeliveries(ctx, "op1", "www", "v1", []string{"web", "kv"}); err != nil {
			t.Fatal(err)
		}
		all, err := st.Deliveries(ctx, "op1")
		if err != nil || len(all) != 2 || all[0].Destination != "kv" || all[1].Status != operation.DeliveryDelivered ||
			string(all[1].Receipt) != `{"changed":true}` || !all[1].DeliveredAt.Equal(now) {
			t.Fatalf("Deliveries = %+v, %v", all, err)
		}
		states, err := st.DestinationStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := states["www"]
		if len(got) != 2 || got[0].Destination != "kv" || got[0].LastError != "connection refused" ||
			got[1].DeliveredVersionID != "v1" || got[1].LastError != "" {
			t.Errorf("DestinationStates = %+v", got)
		}
		if _, err := st.Delivery(ctx, "op1", "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delivery(nope) = %v", err)
		}
	})
}

func TestReseal(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, dsn string) {
		st := open(t, dsn)
		ctx := t.Context()
		seal := func(p, a []byte) (string, error) { return "old:" + string(a) + ":" + string(p), nil }
		open := func(s string, a []byte) ([]byte, error) {
			rest, ok := strings.CutPrefix(s, "old:"+string(a)+":")
			if !ok {
				return nil, errors.New("not sealed with the old key")
			}
			return []byte(rest), nil
		}
		if err := st.CheckMasterKey(ctx, seal, open); err != nil {
			t.Fatal(err)
		}
		if err := st.SaveAccount(ctx, store.Account{DirectoryURL: "https://ca/dir", URI: "u", KeySealed: "old:https://ca/dir:K"}); err != nil {
			t.Fatal(err)
		}
		n, err := st.Reseal(ctx, func(s string, a []byte) (string, error) {
			p, err := open(s, a)
			return "new:" + string(a) + ":" + string(p), err
		})
		if err != nil || n != 2 {
			t.Fatalf("Reseal = %d, %v; want 2 values", n, err)
		}
		if err := st.CheckMasterKey(ctx, seal, open); !errors.Is(err, store.ErrWrongMasterKey) {
			t.Errorf("CheckMasterKey with the old key after resealing = %v, want ErrWrongMasterKey", err)
		}
		a, _ := st.Account(ctx, "https://ca/dir")
		if a.KeySealed != "new:https://ca/dir:K" {
			t.Errorf("account key = %q", a.KeySealed)
		}
		// A value that does not open leaves everything as it was.
		if _, err := st.Reseal(ctx, func(string, []byte) (string, error) { return "", errors.New("boom") }); err == nil {
			t.Error("Reseal with a failing function succeeded")
		}
		if a, _ := st.Account(ctx, "https://ca/dir"); a.KeySealed != "new:https://ca/dir:K" {
			t.Errorf("account key after a failed reseal = %q", a.KeySealed)
		}
		// An unknown sealed column stops it.
		if _, err := st.DB().ExecContext(ctx, `CREATE TABLE eab_keys (kid TEXT PRIMARY KEY, hmac_sealed TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Reseal(ctx, func(s string, a []byte) (string, error) { return s, nil }); err == nil ||
			!strings.Contains(err.Error(), "eab_keys.hmac_sealed") {
			t.Errorf("Reseal with an unknown sealed column = %v", err)
		}
	})
}
