package app_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/operation"
)

// rawDB opens the service's database beside it, as an operator's SQL
// client would (not through the store, which admits one process per SQLite
// file).
func rawDB(t *testing.T, cfg config.Config) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", cfg.Database.Reveal()
	if dsn == "" {
		driver, dsn = "sqlite", "file:"+cfg.SQLitePath()+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// operationView is GET /api/operations/{id}.
type operationView struct {
	Status    string     `json:"status"`
	Steps     []stepView `json:"steps"`
	VersionID string     `json:"versionId"`
}

type stepView struct {
	Name       string     `json:"name"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
}

func getOperation(t *testing.T, base, id string) (int, operationView) {
	t.Helper()
	r := do(t, http.MethodGet, base+"/api/operations/"+id, "")
	body, _ := io.ReadAll(r.Body)
	var v operationView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding operation %s: %v: %s", id, err, body)
	}
	return r.StatusCode, v
}

func operationID(t *testing.T, accepted *http.Response) string {
	t.Helper()
	loc := accepted.Header.Get("Location")
	i := strings.LastIndex(loc, "/")
	if i < 0 || !operation.ValidID(loc[i+1:]) {
		t.Fatalf("Location %q names no operation", loc)
	}
	return loc[i+1:]
}

// TestOneIssuancePerCertificate checks that operations of one certificate
// run one at a time: a request for a certificate another operation works on
// is accepted (202) and waits, showing it, until that one ends.
func TestOneIssuancePerCertificate(t *testing.T) {
	t.Parallel()
	d := startDeps(t)
	eachDatabase(t, func(t *testing.T, db string) {
		cfg := d.config(t, db)
		base := service(t, cfg)
		raw := rawDB(t, cfg)

		t.Run("waits for the running operation", func(t *testing.T) {
			name := db + "-held"
			// Another replica's operation of the certificate is running and
			// holds its lease.
			holder := operation.NewID()
			now := time.Now().UnixMicro()
			if _, err := raw.ExecContext(t.Context(), `INSERT INTO operations
				(id, kind, certificate_name, spec, status, steps, created_at, updated_at)
				VALUES ($1, 'issue', $2, '{}', 'running', '[]', $3, $3)`, holder, name, now); err != nil {
				t.Fatal(err)
			}
			if _, err := raw.ExecContext(t.Context(), `INSERT INTO certificate_leases
				(certificate_name, operation_id, expires_at) VALUES ($1, $2, $3)`,
				name, holder, time.Now().Add(time.Hour).UnixMicro()); err != nil {
				t.Fatal(err)
			}

			accepted := post(t, base+"/api/certificate",
				`{"dnsNames":["held.`+db+`.example.test"],"certificateName":"`+name+`"}`)
			id := operationID(t, accepted)
			for {
				status, v := getOperation(t, base, id)
				if status != http.StatusAccepted {
					t.Fatalf("operation ended (%d, %+v) while another one held its certificate", status, v)
				}
				if len(v.Steps) > 0 {
					if v.Steps[0].Name != string(operation.StepWaiting) || len(v.Steps) != 1 || v.Status != "pending" {
						t.Fatalf("operation is %s with steps %+v; want pending, waiting", v.Status, v.Steps)
					}
					break
				}
				select {
				case <-t.Context().Done():
					t.Fatal("the operation never showed that it waits")
				case <-time.After(50 * time.Millisecond):
				}
			}

			// The other operation ends: this one goes on.
			if _, err := raw.ExecContext(t.Context(), `UPDATE operations SET status = 'succeeded' WHERE id = $1`, holder); err != nil {
				t.Fatal(err)
			}
			if status, body := waitFor(t, accepted); status != http.StatusOK {
				t.Fatalf("operation ended with %d: %s", status, body)
			}
			_, v := getOperation(t, base, id)
			// After the wait come the issuance's own steps, which start with
			// the checks before ordering (CAA, DNS) and include ordering.
			ordered := slices.ContainsFunc(v.Steps, func(s stepView) bool { return s.Name == string(operation.StepOrdering) })
			if len(v.Steps) < 2 || v.Steps[0].Name != string(operation.StepWaiting) || v.Steps[0].FinishedAt == nil || !ordered {
				t.Errorf("steps = %+v; want a finished wait, then the issuance, ordering included", v.Steps)
			}
		})

		t.Run("concurrent requests take turns", func(t *testing.T) {
			name := db + "-turns"
			const requests = 3
			accepted := make([]*http.Response, requests)
			var wg sync.WaitGroup
			for i := range accepted {
				wg.Go(func() {
					accepted[i] = post(t, base+"/api/certificate",
						`{"dnsNames":["turns.`+db+`.example.test"],"certificateName":"`+name+`"}`)
				})
			}
			wg.Wait()
			type span struct{ from, to time.Time }
			var spans []span
			versions := map[string]bool{}
			for _, a := range accepted {
				if status, body := waitFor(t, a); status != http.StatusOK {
					t.Fatalf("operation ended with %d: %s", status, body)
				}
				_, v := getOperation(t, base, operationID(t, a))
				var s span
				for _, st := range v.Steps {
					if st.Name == string(operation.StepWaiting) {
						continue
					}
					if s.from.IsZero() {
						s.from = st.StartedAt
					}
					if st.FinishedAt != nil && st.FinishedAt.After(s.to) {
						s.to = *st.FinishedAt
					}
				}
				spans = append(spans, s)
				versions[v.VersionID] = true
			}
			slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
			for i := 1; i < len(spans); i++ {
				if spans[i].from.Before(spans[i-1].to) {
					t.Errorf("operations overlap: one ran %v to %v, the next started %v",
						spans[i-1].from, spans[i-1].to, spans[i].from)
				}
			}
			var n int
			if err := raw.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM certificate_versions WHERE certificate_name = $1`,
				name).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != requests || len(versions) != requests {
				t.Errorf("%d versions stored, %d distinct version ids; want %d of each", n, len(versions), requests)
			}
			assertNoRecords(t, d.bind, "turns."+db+".example.test")
		})
	})
}
