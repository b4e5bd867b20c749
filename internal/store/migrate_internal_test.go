package store

import (
	"testing"
	"time"
)

// TestMigrationSchedulesEveryCertificate runs migration 0007 again over a
// certificate stored without a renewal schedule, as imports were before it:
// the certificate gets a schedule due at once, one with its schedule keeps
// it.
func TestMigrationSchedulesEveryCertificate(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	ctx := t.Context()
	for _, name := range []string{"unscheduled", "scheduled"} {
		v := Version{ID: "v-" + name, Name: name, ACMEEndpoint: "https://ca.test/dir", CreatedAt: time.Now(),
			NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
		if err := st.InsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.db.ExecContext(ctx, `DELETE FROM renewals WHERE certificate_name = 'unscheduled'`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.ExecContext(ctx, `UPDATE renewals SET next_check_at = 42 WHERE certificate_name = 'scheduled'`); err != nil {
		t.Fatal(err)
	}
	raw, err := migrationFS.ReadFile("migrations/0007_schedule_every_certificate.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.ExecContext(ctx, string(raw)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"unscheduled": 0, "scheduled": 42} {
		var next int64
		if err := st.db.QueryRowContext(ctx, `SELECT next_check_at FROM renewals WHERE certificate_name = $1`, name).
			Scan(&next); err != nil || next != want {
			t.Errorf("schedule of %s: next check %d, %v; want %d", name, next, err, want)
		}
	}
}
