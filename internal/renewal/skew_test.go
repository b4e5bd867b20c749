package renewal_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/renewal"
	"github.com/certkeeper/certkeeper/internal/store"
)

// TestSchedulerUnderClockSkew schedules certificates from a CA whose clock
// is minutes or hours ahead of certkeeper's or behind it: the certificate's
// notBefore and the renewal window the CA suggests are on the CA's clock,
// so with the CA ahead the notBefore is in certkeeper's future. The
// certificate must be scheduled, not renewed at once; the renewal must
// start when the window says (not a moment before) and exactly once (no
// storm over the next scans); without renewal information the lifetime
// rule must give the same moment as without skew, relative to the
// certificate. A CA behind whose window says "now" (on its clock) is
// renewed at once, once.
func TestSchedulerUnderClockSkew(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, st *store.Store) {
		for i, skew := range []time.Duration{-3 * time.Hour, -10 * time.Minute, 10 * time.Minute, 3 * time.Hour} {
			caNow := t0.Add(skew)
			f := newFixture(st, t0, 100) // the renewals of earlier rounds stay in flight
			ari := fmt.Sprintf("ari%d", i)
			v := issued(t, st, ari, fmt.Sprintf("%032x", 0x100+i), caNow, 90*day, t0)
			ws, we := caNow.Add(60*day), caNow.Add(62*day)
			f.adv.answers[ari] = func() (issuer.RenewalInfo, error) {
				return issuer.RenewalInfo{Start: ws, End: we, RetryAfter: 6 * time.Hour}, nil
			}
			life := fmt.Sprintf("life%d", i)
			lv := issued(t, st, life, fmt.Sprintf("%032x", 0x200+i), caNow, 6*day, t0)

			if res := f.scan(t); res.Started != 0 || res.Checked != 2 || len(f.note.sent) != 0 {
				t.Fatalf("CA clock %v: first scan = %+v, expiring events %v; want both scheduled, none renewed or reported", skew, res, f.note.sent)
			}
			r := f.schedule(t, ari)
			want := renewal.InWindow(ws, we, v.ID)
			if r.Source != renewal.SourceARI || r.Status != renewal.StatusScheduled || !r.RenewAt.Equal(want) {
				t.Errorf("CA clock %v: %+v; want ARI, scheduled at %v inside the CA's window", skew, r, want)
			}
			lr := f.schedule(t, life)
			if want := (renewal.Policy{Days: 30}).Lifetime(lv.NotBefore, lv.NotAfter, lv.ID); lr.Source != renewal.SourceLifetime || !lr.RenewAt.Equal(want) {
				t.Errorf("CA clock %v: %+v; want lifetime at %v", skew, lr, want)
			}

			// Scans every day up to a minute before the planned moment
			// start nothing; the ARI is asked again at each Retry-After.
			for f.now = t0.Add(time.Hour); f.now.Before(r.RenewAt.Add(-time.Minute)); f.now = f.now.Add(24 * time.Hour) {
				if res := f.scan(t); res.Started != 0 && f.now.Before(lr.RenewAt) {
					t.Fatalf("CA clock %v: a renewal started at %v, before the planned %v", skew, f.now, lr.RenewAt)
				}
			}
			if got := f.start.names(); len(got) != 1 || got[0] != life {
				t.Errorf("CA clock %v: renewals started before the window %v; want only %s's, at its lifetime moment", skew, got, life)
			}
			f.now = r.RenewAt.Add(-time.Minute)
			f.scan(t)
			if got := f.start.names(); len(got) != 1 {
				t.Errorf("CA clock %v: %v started a minute before the window's moment", skew, got)
			}
			f.now = r.RenewAt
			if res := f.scan(t); res.Started != 1 {
				t.Errorf("CA clock %v: scan at the window's moment %v = %+v; want the renewal started", skew, r.RenewAt, res)
			}
			for range 12 { // an hour of scans: no storm
				f.now = f.now.Add(5 * time.Minute)
				f.scan(t)
			}
			if got := f.start.names(); len(got) != 2 {
				t.Errorf("CA clock %v: renewals started %v; want each certificate once", skew, got)
			}
		}

		// The CA, three hours behind, says renew now: its window is
		// [its now - 1h, its now + 1h], over by certkeeper's clock.
		f := newFixture(st, t0, 100) // the renewals of earlier rounds stay in flight
		caNow := t0.Add(-3 * time.Hour)
		issued(t, st, "urgent", fmt.Sprintf("%032x", 0x300), caNow.Add(-30*day), 90*day, t0)
		f.adv.answers["urgent"] = func() (issuer.RenewalInfo, error) {
			return issuer.RenewalInfo{Start: caNow.Add(-time.Hour), End: caNow.Add(time.Hour), RetryAfter: time.Hour}, nil
		}
		if res := f.scan(t); res.Started != 1 {
			t.Errorf("CA behind saying renew now: scan = %+v; want the renewal started at once", res)
		}
		f.now = f.now.Add(2 * time.Hour)
		if res := f.scan(t); res.Started != 0 {
			t.Errorf("CA behind saying renew now: a second scan started %d more", res.Started)
		}
	})
}

// issued stores a version as addVersion does, then starts its schedule as
// the application does when the issuance ends at now (certkeeper's clock):
// planned by the lifetime rule, looked at now.
func issued(t *testing.T, st *store.Store, name, id string, notBefore time.Time, lifetime time.Duration, now time.Time) store.Version {
	t.Helper()
	v := addVersion(t, st, name, id, notBefore, lifetime)
	err := st.Tx(t.Context(), func(tx *sql.Tx) error {
		return st.RenewalSucceeded(t.Context(), tx, name, "", id, renewal.Policy{Days: 30}.Lifetime(v.NotBefore, v.NotAfter, v.ID),
			now, renewal.StatusScheduled, "issued")
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
