package renewal_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/renewal"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopPostgres()
	os.Exit(code)
}

const day = 24 * time.Hour

// eachDatabase runs fn on a fresh SQLite and a fresh PostgreSQL store.
func eachDatabase(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			dsn := filepath.Join(t.TempDir(), "certkeeper.db")
			if db == "postgres" {
				dsn = testenv.PostgresURL(t)
			}
			st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			fn(t, st)
		})
	}
}

// issuerCA signs test certificates, so they carry an authority key id.
var issuerCA = sync.OnceValues(func() (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Now().Add(100 * 365 * day), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ca, _ := x509.ParseCertificate(der)
	return ca, key
})

// addVersion stores a version of name valid from notBefore for lifetime, and
// starts its schedule as a finished issuance does.
func addVersion(t *testing.T, st *store.Store, name, id string, notBefore time.Time, lifetime time.Duration) store.Version {
	t.Helper()
	v := storeVersion(t, st, name, id, notBefore, lifetime)
	err := st.Tx(t.Context(), func(tx *sql.Tx) error {
		return st.RenewalSucceeded(t.Context(), tx, name, "", id, time.Time{}, notBefore, renewal.StatusScheduled, "issued")
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// storeVersion stores a version of name valid from notBefore for lifetime,
// with no renewal schedule, as an import does.
func storeVersion(t *testing.T, st *store.Store, name, id string, notBefore time.Time, lifetime time.Duration) store.Version {
	t.Helper()
	ca, caKey := issuerCA()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name + ".example.test"},
		DNSNames: []string{name + ".example.test"}, NotBefore: notBefore, NotAfter: notBefore.Add(lifetime)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	v := store.Version{ID: id, Name: name, Spec: certificate.Spec{Name: name, DNSNames: tmpl.DNSNames, KeyType: "EC"},
		ACMEEndpoint: "https://ca.example/dir", Serial: serial.Text(16), Thumbprint: "AB", NotBefore: tmpl.NotBefore,
		NotAfter: tmpl.NotAfter, CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeySealed: "sealed", CreatedAt: notBefore, AccountURI: "https://ca.example/acct/1"}
	if err := st.InsertVersion(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	return v
}

// advisor answers RenewalInfo per certificate common name.
type advisor struct {
	mu      sync.Mutex
	answers map[string]func() (issuer.RenewalInfo, error)
	calls   map[string]int
}

func (a *advisor) RenewalInfo(_ context.Context, _, _ string, leaf *x509.Certificate) (issuer.RenewalInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := strings.TrimSuffix(leaf.Subject.CommonName, ".example.test")
	a.calls[name]++
	if f, ok := a.answers[name]; ok {
		return f()
	}
	return issuer.RenewalInfo{}, issuer.ErrNoRenewalInfo
}

func (a *advisor) count(name string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[name]
}

// starter records the renewals started and claims them in the schedule as
// the application does.
type starter struct {
	st      *store.Store
	mu      sync.Mutex
	started []string
}

func (s *starter) StartRenewal(ctx context.Context, name string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = append(s.started, name)
	err := s.st.Tx(ctx, func(tx *sql.Tx) error {
		return s.st.ClaimRenewal(ctx, tx, name, "", "op-"+name, renewal.StatusRenewing, time.Now().Add(time.Hour))
	})
	return "op-" + name, err == nil, err
}

func (s *starter) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.started...)
}

type notifier struct {
	mu   sync.Mutex
	sent []string
}

func (n *notifier) Expiring(_ context.Context, v store.Version) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, v.Name)
	return nil
}

// fixture is a scheduler on st with a fake clock.
type fixture struct {
	st    *store.Store
	now   time.Time
	adv   *advisor
	start *starter
	note  *notifier
	s     *renewal.Scheduler
}

func newFixture(st *store.Store, now time.Time, concurrency int) *fixture {
	f := &fixture{st: st, now: now, adv: &advisor{answers: map[string]func() (issuer.RenewalInfo, error){}, calls: map[string]int{}},
		start: &starter{st: st}, note: &notifier{}}
	f.s = renewal.NewScheduler(renewal.Options{Store: st, Advisor: f.adv, Starter: f.start, Notifier: f.note,
		Policy: renewal.Policy{Days: 30}, Concurrency: concurrency, CheckInterval: 5 * time.Minute,
		ExpiringWithin: 7 * day, Now: func() time.Time { return f.now }})
	return f
}

func (f *fixture) scan(t *testing.T) renewal.Result {
	t.Helper()
	res, err := f.s.Scan(t.Context())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return res
}

func (f *fixture) schedule(t *testing.T, name string) store.Renewal {
	t.Helper()
	r, err := f.st.RenewalByName(t.Context(), nil, name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func TestSchedulerARIWindow(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, st *store.Store) {
		f := newFixture(st, t0.Add(time.Hour), 5)
		v := addVersion(t, st, "ari", "00000000000000000000000000000001", t0, 90*day)
		ws, we := t0.Add(59*day), t0.Add(61*day)
		f.adv.answers["ari"] = func() (issuer.RenewalInfo, error) {
			return issuer.RenewalInfo{Start: ws, End: we, RetryAfter: 6 * time.Hour}, nil
		}
		if res := f.scan(t); res.Checked != 1 || res.Started != 0 {
			t.Fatalf("first scan = %+v; want one checked, none started", res)
		}
		r := f.schedule(t, "ari")
		wantRenew := renewal.InWindow(ws, we, v.ID).Truncate(time.Microsecond)
		if r.Source != renewal.SourceARI || !r.RenewAt.Equal(wantRenew) || r.Status != renewal.StatusScheduled {
			t.Errorf("schedule = %+v; want ari, renew at %v, scheduled", r, wantRenew)
		}
		if want := f.now.Add(6 * time.Hour); !r.NextCheckAt.Equal(want) || !r.ARINextAt.Equal(want) {
			t.Errorf("next check %v, ARI next %v; want both at the Retry-After, %v", r.NextCheckAt, r.ARINextAt, want)
		}
		if !r.LastCheckedAt.Equal(f.now) || !strings.Contains(r.Message, "suggested window") {
			t.Errorf("last checked %v, message %q", r.LastCheckedAt, r.Message)
		}
		// Not due again before the Retry-After: nothing is asked.
		f.now = f.now.Add(time.Hour)
		if res := f.scan(t); res.Checked != 0 || f.adv.count("ari") != 1 {
			t.Errorf("scan before the next check = %+v, %d ARI calls; want nothing", res, f.adv.count("ari"))
		}
		// The CA moves the window into the past (a revocation is coming):
		// asked again after the Retry-After, renewed at once.
		ws, we = t0.Add(-2*time.Hour), t0.Add(-time.Hour)
		f.now = t0.Add(7*time.Hour + time.Second)
		if res := f.scan(t); res.Started != 1 || f.adv.count("ari") != 2 {
			t.Errorf("scan after the window moved = %+v, %d ARI calls; want one renewal started", res, f.adv.count("ari"))
		}
		if r := f.schedule(t, "ari"); r.OperationID != "op-ari" || r.Status != renewal.StatusRenewing {
			t.Errorf("schedule = %+v; want the renewal in flight", r)
		}
	})
}

func TestSchedulerRetryAfterClamp(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, st *store.Store) {
		f := newFixture(st, t0, 5)
		addVersion(t, st, "eager", "00000000000000000000000000000002", t0, 90*day)
		f.adv.answers["eager"] = func() (issuer.RenewalInfo, error) {
			return issuer.RenewalInfo{Start: t0.Add(60 * day), End: t0.Add(61 * day), RetryAfter: time.Second}, nil
		}
		f.scan(t)
		if r := f.schedule(t, "eager"); !r.NextCheckAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("next check after Retry-After 1s = %v, want one minute later", r.NextCheckAt)
		}
		addVersion(t, st, "lazy", "00000000000000000000000000000003", t0, 90*day)
		f.adv.answers["lazy"] = func() (issuer.RenewalInfo, error) {
			return issuer.RenewalInfo{Start: t0.Add(60 * day), End: t0.Add(61 * day), RetryAfter: 30 * day}, nil
		}
		f.scan(t)
		if r := f.schedule(t, "lazy"); !r.NextCheckAt.Equal(t0.Add(day)) {
			t.Errorf("next check after Retry-After 30 days = %v, want a day later", r.NextCheckAt)
		}
	})
}

func TestSchedulerLifetimeFallback(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, st *store.Store) {
		f := newFixture(st, t0, 5)
		none := addVersion(t, st, "none", "00000000000000000000000000000004", t0, 6*day)
		broken := addVersion(t, st, "broken", "00000000000000000000000000000005", t0, 90*day)
		f.adv.answers["broken"] = func() (issuer.RenewalInfo, error) { return issuer.RenewalInfo{}, errors.New("connection refused") }
		f.scan(t)

		r := f.schedule(t, "none")
		want := renewal.Policy{Days: 30}.Lifetime(none.NotBefore, none.NotAfter, none.ID)
		if r.Source != renewal.SourceLifetime || !r.RenewAt.Equal(want) || !r.ARINextAt.Equal(t0.Add(day)) {
			t.Errorf("without ARI: %+v; want lifetime, renew at %v (half of 6 days), ask again in a day", r, want)
		}
		if r.RenewAt.Before(t0.Add(3*day-6*day/20)) || r.RenewAt.After(t0.Add(3*day)) {
			t.Errorf("a 6-day certificate renews at %v, want about half its lifetime", r.RenewAt)
		}
		r = f.schedule(t, "broken")
		want = renewal.Policy{Days: 30}.Lifetime(broken.NotBefore, broken.NotAfter, broken.ID)
		if r.Source != renewal.SourceLifetime || !r.RenewAt.Equal(want) || !r.NextCheckAt.Equal(t0.Add(time.Hour)) ||
			!strings.Contains(r.Message, "connection refused") {
			t.Errorf("ARI failing: %+v; want lifetime at %v, asked again in an hour, the error in the message", r, want)
		}
		// At the lifetime moment, renewed.
		f.now = f.schedule(t, "none").RenewAt
		if res := f.scan(t); res.Started != 1 {
			t.Errorf("scan at the planned moment = %+v, want one renewal", res)
		}
	})
}

func TestSchedulerConcurrency(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, st *store.Store) {
		f := newFixture(st, t0.Add(89*day), 2)
		for i, name := range []string{"a", "b", "c"} {
			addVersion(t, st, name, "0000000000000000000000000000001"+string(rune('0'+i)), t0, 90*day)
		}
		res := f.scan(t)
		if res.Started != 2 || res.Waiting != 1 {
			t.Fatalf("scan of three due with two slots = %+v; want two started, one waiting", res)
		}
		waiting := ""
		for _, name := range []string{"a", "b", "c"} {
			if r := f.schedule(t, name); r.Status == renewal.StatusWaiting {
				waiting = name
				if !r.NextCheckAt.Equal(f.now.Add(5 * time.Minute)) {
					t.Errorf("a waiting renewal is looked at again at %v, want after the check interval", r.NextCheckAt)
				}
			}
		}
		if waiting == "" {
			t.Fatal("no schedule is waiting")
		}
		// The slots are taken until a renewal ends.
		f.now = f.now.Add(5 * time.Minute)
		if res := f.scan(t); res.Started != 0 || res.Waiting != 1 {
			t.Errorf("scan with no free slot = %+v", res)
		}
		err := st.Tx(t.Context(), func(tx *sql.Tx) error {
			first := f.start.names()[0]
			return st.RenewalSucceeded(t.Context(), tx, first, "op-"+first, "00000000000000000000000000000019",
				f.now.Add(60*day), f.now.Add(day), renewal.StatusScheduled, "renewed")
		})
		if err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(5 * time.Minute)
		if res := f.scan(t); res.Started != 1 {
			t.Errorf("scan with a free slot = %+v, want the waiting one started", res)
		}
		if got := f.start.names(); len(got) != 3 || got[2] != waiting {
			t.Errorf("started %v; want %s last", got, waiting)
		}
	})
}

func TestSchedulerBackoffAndExpiring(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, st *store.Store) {
		// A 90-day certificate with 5 days left whose renewals fail.
		f := newFixture(st, t0.Add(85*day), 5)
		addVersion(t, st, "failing", "00000000000000000000000000000020", t0, 90*day)
		if res := f.scan(t); res.Started != 1 {
			t.Fatalf("scan = %+v, want the renewal started", res)
		}
		if len(f.note.sent) != 1 {
			t.Errorf("expiring events = %v; want one for a certificate with 5 days left", f.note.sent)
		}
		for failures := 1; failures <= 4; failures++ {
			var n int
			err := st.Tx(t.Context(), func(tx *sql.Tx) error {
				var err error
				n, err = st.RenewalFailed(t.Context(), tx, "failing", "op-failing", func(n int) (time.Time, string) {
					return f.now.Add(renewal.Backoff(n)), renewal.FailedStatus(n)
				}, "Renewal failed: DNS says no")
				return err
			})
			if err != nil || n != failures {
				t.Fatalf("RenewalFailed = %d, %v; want %d", n, err, failures)
			}
			r := f.schedule(t, "failing")
			if wantStatus := renewal.FailedStatus(failures); r.Status != wantStatus || r.Failures != failures {
				t.Errorf("after %d failures: %s with %d failures, want %s", failures, r.Status, r.Failures, wantStatus)
			}
			// Before the backoff ends nothing is retried, even when the
			// scheduler looks (for the CA's window).
			f.now = f.now.Add(renewal.Backoff(failures) - time.Second)
			f.scan(t)
			if got := len(f.start.names()); got != failures {
				t.Fatalf("after %d failures, %d renewals started before the backoff ended", failures, got)
			}
			if r := f.schedule(t, "failing"); r.Status != renewal.FailedStatus(failures) || r.Message != "Renewal failed: DNS says no" {
				t.Errorf("while backing off: %s %q", r.Status, r.Message)
			}
			f.now = f.now.Add(time.Second)
			if res := f.scan(t); res.Started != 1 {
				t.Fatalf("after the backoff of failure %d: %+v, want the renewal retried", failures, res)
			}
		}
		if len(f.note.sent) != 1 {
			t.Errorf("expiring events = %v; want exactly one per version", f.note.sent)
		}
	})
}

func TestSchedulerRevoked(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, st *store.Store) {
		f := newFixture(st, t0.Add(89*day), 5)
		v := addVersion(t, st, "revoked", "00000000000000000000000000000030", t0, 90*day)
		if err := st.MarkRevoked(t.Context(), v.ID, t0.Add(day)); err != nil {
			t.Fatal(err)
		}
		if res := f.scan(t); res.Started != 0 {
			t.Errorf("scan = %+v; a certificate revoked here is not renewed automatically", res)
		}
		if r := f.schedule(t, "revoked"); r.Status != renewal.StatusRevoked || !r.NextCheckAt.Equal(f.now.Add(day)) {
			t.Errorf("schedule = %+v; want revoked, looked at again in a day", r)
		}
	})
}

// TestSchedulerAdoptsUnscheduled checks that a certificate stored outside an
// issuance (imported from Key Vault Acmebot) has a schedule due at once, and
// that the next scan renews it when its moment has come, once.
func TestSchedulerAdoptsUnscheduled(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, st *store.Store) {
		f := newFixture(st, t0.Add(80*day), 5)
		storeVersion(t, st, "imported", "00000000000000000000000000000031", t0, 90*day)
		fresh := storeVersion(t, st, "imported-fresh", "00000000000000000000000000000032", t0.Add(79*day), 90*day)
		if r := f.schedule(t, "imported"); r.NextCheckAt.After(f.now) {
			t.Fatalf("schedule of an imported certificate = %+v; want one due at once", r)
		}
		if res := f.scan(t); res.Started != 1 || !slices.Equal(f.start.names(), []string{"imported"}) {
			t.Errorf("scan = %+v, renewals %v; want the imported certificate past its moment renewed", res, f.start.names())
		}
		r := f.schedule(t, "imported-fresh")
		if r.VersionID != fresh.ID || r.Status != renewal.StatusScheduled || !r.RenewAt.After(f.now) {
			t.Errorf("schedule of a fresh import = %+v; want scheduled for later", r)
		}
		if res := f.scan(t); res.Started != 0 {
			t.Errorf("second scan = %+v; want no second renewal", res)
		}
	})
}
