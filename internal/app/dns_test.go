package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/dns/cloudflare/cloudflaretest"
	"github.com/certkeeper/certkeeper/internal/dns/rfc2136"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/testenv"
)

// TestCNAMEDelegation issues against Pebble for names whose own zone is not
// configured: their _acme-challenge records are CNAMEs (in BIND) into the
// one configured zone, followed automatically or named by dnsAlias.
func TestCNAMEDelegation(t *testing.T) {
	t.Parallel()
	var extra []string
	for _, db := range []string{"sqlite", "postgres"} {
		extra = append(extra,
			"_acme-challenge.auto."+db+".example.test. IN CNAME _acme-challenge.hop."+db+".example.test.",
			"_acme-challenge.hop."+db+".example.test. IN CNAME _acme-challenge.auto-"+db+".alias.test.",
			"_acme-challenge.a."+db+".example.test. IN CNAME _acme-challenge."+db+".alias.test.",
			"_acme-challenge.b."+db+".example.test. IN CNAME _acme-challenge."+db+".alias.test.",
		)
	}
	bind := testenv.StartBIND(t, testenv.BINDOptions{Zones: []string{"example.test", "alias.test"}, ExtraRecords: extra})
	// Pebble asks a resolver, which chases the CNAMEs across zones as a
	// CA's resolvers do; BIND alone answers only the first link.
	resolver := testenv.StartResolver(t, bind.Addr)
	pebble := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: resolver.Addr})
	d := deps{bind: bind, pebble: pebble}
	eachDatabase(t, func(t *testing.T, db string) {
		cfg := d.config(t, db)
		cfg.DNS.Providers[0].Zones = []string{"alias.test"}
		base := service(t, cfg)

		t.Run("automatic", func(t *testing.T) {
			status, body := issueAndWait(t, base, `{"dnsNames":["auto.`+db+`.example.test","*.auto.`+db+`.example.test"]}`)
			if status != http.StatusOK {
				t.Fatalf("issuance ended with %d: %s", status, body)
			}
		})
		t.Run("dnsAlias", func(t *testing.T) {
			resp := post(t, base+"/api/certificate", `{"dnsNames":["a.`+db+`.example.test","b.`+db+`.example.test"],"dnsAlias":"`+db+`.alias.test"}`)
			status, body := waitFor(t, resp)
			if status != http.StatusOK {
				t.Fatalf("issuance ended with %d: %s", status, body)
			}
			logPropagation(t, resp.Header.Get("Location"))
			if item := certificateItem(t, base, "a-"+db+"-example-test"); item["dnsAlias"] != db+".alias.test" {
				t.Errorf("certificate item dnsAlias = %v", item["dnsAlias"])
			}
		})
		t.Run("dnsAlias with a CNAME missing", func(t *testing.T) {
			status, body := issueAndWait(t, base, `{"dnsNames":["a.`+db+`.example.test","nocname.`+db+`.example.test"],"dnsAlias":"`+db+`.alias.test"}`)
			want := "the CNAME record _acme-challenge.nocname." + db + ".example.test. → _acme-challenge." + db + ".alias.test. (dnsAlias) is missing"
			if status != http.StatusInternalServerError || !strings.Contains(body, want) || !strings.Contains(body, "checking DNS") {
				t.Errorf("state = %d %s; want 500 at checking DNS containing %q", status, body, want)
			}
			if strings.Contains(body, "_acme-challenge.a.") {
				t.Errorf("detail names the CNAME that is in place: %s", body)
			}
		})
		t.Run("no zone and no CNAME", func(t *testing.T) {
			r := do(t, http.MethodPost, base+"/api/certificate", `{"dnsNames":["plain.`+db+`.example.test"]}`)
			var problem map[string]any
			json.NewDecoder(r.Body).Decode(&problem)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(toJSON(problem), "No configured DNS zone contains plain."+db+".example.test") {
				t.Errorf("POST = %d %v; want 400 naming the name", r.StatusCode, problem)
			}
		})
		for _, zone := range []string{"example.test", "alias.test"} {
			left, err := bind.ChallengeRecords(t.Context(), zone)
			if err != nil {
				t.Fatal(err)
			}
			for _, owner := range left {
				if strings.Contains(owner, db) {
					t.Errorf("challenge record left: %s", owner)
				}
			}
		}
	})
}

// TestHTTPProviderLaggingServer issues through the Cloudflare API (a fake
// that mirrors its records into BIND: into one server at once, into a
// second after a delay, as a lagging secondary would), with Pebble asking
// the lagging server: the issuance waits until both answer. It also lists
// zones with one account failing, and checks that an API refusal and a
// wrong delegation reach the operation's detail.
func TestHTTPProviderLaggingServer(t *testing.T) {
	t.Parallel()
	zones := []string{"cf.test", "other.test"}
	primary := testenv.StartBIND(t, testenv.BINDOptions{Zones: zones})
	lagging := testenv.StartBIND(t, testenv.BINDOptions{Zones: zones})
	pebble := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: lagging.Addr})
	const lag = 1500 * time.Millisecond

	eachDatabase(t, func(t *testing.T, db string) {
		cf := cloudflaretest.Start(t, "cf-token-"+db,
			cloudflaretest.Zone{ID: "zone-cf", Name: "cf.test", NameServers: []string{"ns.cf.test"}},
			cloudflaretest.Zone{ID: "zone-other", Name: "other.test", NameServers: []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"}})
		m := newMirror(t, primary, lagging, lag)
		cf.OnChange = m.apply
		broken := cloudflaretest.Start(t, "the-right-token", cloudflaretest.Zone{ID: "z", Name: "broken.test"})

		cfg := config.Default()
		cfg.Listen = "127.0.0.1:0"
		cfg.DataDir = t.TempDir()
		if db == "postgres" {
			cfg.Database = secret.String(testenv.PostgresURL(t))
		}
		cfg.ACME.Endpoint = pebble.DirectoryURL
		cfg.ACME.CABundle = pebble.CABundle
		cfg.DNS.Resolvers = []string{primary.Addr, lagging.Addr}
		cfg.DNS.PropagationTimeout = 30 * time.Second
		cfg.DNS.Providers = []config.DNSProvider{
			{Name: "Cloudflare", Type: config.ProviderCloudflare, TTL: 60, PropagationTimeout: 30 * time.Second,
				Settings: &config.Cloudflare{APIToken: secret.String("cf-token-" + db), Endpoint: cf.Endpoint()}},
			{Name: "Broken", Type: config.ProviderCloudflare, TTL: 60, PropagationTimeout: 30 * time.Second,
				Settings: &config.Cloudflare{APIToken: "a-wrong-token-0000", Endpoint: broken.Endpoint()}},
			{Name: "BIND", Type: config.ProviderRFC2136, Zones: []string{"bind.test"}, TTL: 60, PropagationTimeout: 30 * time.Second,
				RFC2136: &config.RFC2136{Nameserver: primary.Addr, TSIGKeyName: primary.TSIGKeyName, TSIGAlgorithm: primary.TSIGAlgorithm,
					TSIGSecret: secret.String(primary.TSIGSecret)}},
		}
		cfg.Auth.APIKeys = []config.APIKey{{Name: "t", Key: testKey}}
		base := service(t, cfg)

		t.Run("dns-zones with one provider failing", func(t *testing.T) {
			r := do(t, http.MethodGet, base+"/api/dns-zones", "")
			var got []map[string]any
			if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Fatalf("dns-zones = %v, want three entries", got)
			}
			if s := toJSON(got[0]); s != `{"dnsProviderName":"Cloudflare","dnsZones":[{"name":"cf.test"},{"name":"other.test"}]}` {
				t.Errorf("entry 0 = %s", s)
			}
			if got[1]["dnsProviderName"] != "Broken" || toJSON(got[1]["dnsZones"]) != "[]" ||
				!strings.Contains(toJSON(got[1]["error"]), "HTTP 403 Forbidden: 10000: Authentication error") {
				t.Errorf("entry 1 = %s; want Broken with its error", toJSON(got[1]))
			}
			if s := toJSON(got[2]); s != `{"dnsProviderName":"BIND","dnsZones":[{"name":"bind.test"}]}` {
				t.Errorf("entry 2 = %s", s)
			}
		})
		t.Run("issuance waits for the lagging server", func(t *testing.T) {
			name := "www." + db + ".cf.test"
			resp := post(t, base+"/api/certificate", `{"dnsNames":["`+name+`","*.`+name+`"]}`)
			status, body := waitFor(t, resp)
			if status != http.StatusOK {
				t.Fatalf("issuance ended with %d: %s", status, body)
			}
			steps := operationSteps(t, resp.Header.Get("Location"))
			arrived := m.arrival("_acme-challenge." + name + ".")
			waited, ok := steps["waiting for propagation"]
			if !ok || arrived.IsZero() || waited.FinishedAt == nil || waited.FinishedAt.Before(arrived) {
				t.Errorf("propagation step %+v did not end after the lagging server got the records at %v", waited, arrived)
			} else {
				t.Logf("propagation wait with a %v lag: %v", lag, waited.FinishedAt.Sub(waited.StartedAt))
			}
			if v := cf.TXT("_acme-challenge." + name); len(v) != 0 {
				t.Errorf("records left at Cloudflare: %v", v)
			}
		})
		t.Run("API refusal in the detail", func(t *testing.T) {
			cf.FailCreate = "Content for TXT record is invalid."
			defer func() { cf.FailCreate = "" }()
			status, body := issueAndWait(t, base, `{"dnsNames":["refused.`+db+`.cf.test"],"dnsProviderName":"Cloudflare"}`)
			if status != http.StatusInternalServerError || !strings.Contains(body, "presenting DNS records") ||
				!strings.Contains(body, "1004: Content for TXT record is invalid.") {
				t.Errorf("state = %d %s; want 500 with Cloudflare's words", status, body)
			}
			if strings.Contains(body, "presenting DNS records: presenting DNS records") {
				t.Errorf("state %s names the step twice", body)
			}
		})
		t.Run("wrong delegation", func(t *testing.T) {
			status, body := issueAndWait(t, base, `{"dnsNames":["www.`+db+`.other.test"]}`)
			want := `zone other.test is not delegated to DNS provider \"Cloudflare\": expected name servers ada.ns.cloudflare.com, bob.ns.cloudflare.com, actual ns.other.test`
			if status != http.StatusInternalServerError || !strings.Contains(body, want) {
				t.Errorf("state = %d %s; want 500 containing %s", status, body, want)
			}
		})
	})
}

// mirror copies a fake API's RRsets into two BIND servers, the second
// after a delay, and remembers when each name reached the second.
type mirror struct {
	t                *testing.T
	primary, lagging *rfc2136.Provider
	lag              time.Duration

	mu       sync.Mutex
	arrivals map[string]time.Time
	state    map[string][]string
	wg       sync.WaitGroup
}

func newMirror(t *testing.T, primary, lagging *testenv.BIND, lag time.Duration) *mirror {
	prov := func(b *testenv.BIND) *rfc2136.Provider {
		p, err := rfc2136.New(rfc2136.Config{Nameserver: b.Addr, TSIGKeyName: b.TSIGKeyName, TSIGAlgorithm: b.TSIGAlgorithm, TSIGSecret: secret.String(b.TSIGSecret)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := &mirror{t: t, primary: prov(primary), lagging: prov(lagging), lag: lag, arrivals: map[string]time.Time{}, state: map[string][]string{}}
	t.Cleanup(m.wg.Wait)
	return m
}

func (m *mirror) apply(fqdn string, values []string) {
	m.mu.Lock()
	old := m.state[fqdn]
	m.state[fqdn] = slices.Clone(values)
	m.mu.Unlock()
	added := slices.DeleteFunc(slices.Clone(values), func(v string) bool { return slices.Contains(old, v) })
	removed := slices.DeleteFunc(slices.Clone(old), func(v string) bool { return slices.Contains(values, v) })
	zone := fqdn[strings.Index(fqdn, ".cf.test")+1:]
	if strings.HasSuffix(fqdn, ".other.test.") {
		zone = "other.test."
	}
	write := func(p *rfc2136.Provider) {
		ctx := context.Background()
		if len(added) > 0 {
			if err := p.Present(ctx, zone, fqdn, added); err != nil {
				m.t.Errorf("mirroring %s: %v", fqdn, err)
			}
		}
		if len(removed) > 0 {
			if err := p.CleanUp(ctx, zone, fqdn, removed); err != nil {
				m.t.Errorf("mirroring %s: %v", fqdn, err)
			}
		}
	}
	write(m.primary)
	m.wg.Go(func() {
		time.Sleep(m.lag)
		write(m.lagging)
		if len(added) > 0 {
			m.mu.Lock()
			m.arrivals[fqdn] = time.Now()
			m.mu.Unlock()
		}
	})
}

func (m *mirror) arrival(fqdn string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.arrivals[fqdn]
}

type stepTiming struct {
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
}

// operationSteps returns the steps of the operation at the /api/state URL.
func operationSteps(t *testing.T, stateURL string) map[string]stepTiming {
	t.Helper()
	r := do(t, http.MethodGet, strings.Replace(stateURL, "/api/state/", "/api/operations/", 1), "")
	var op struct {
		Steps []struct {
			Name string `json:"name"`
			stepTiming
		} `json:"steps"`
	}
	if err := json.NewDecoder(r.Body).Decode(&op); err != nil {
		t.Fatal(err)
	}
	out := map[string]stepTiming{}
	for _, s := range op.Steps {
		out[s.Name] = s.stepTiming
	}
	return out
}

// logPropagation logs how long the operation waited for propagation.
func logPropagation(t *testing.T, stateURL string) {
	t.Helper()
	if s, ok := operationSteps(t, stateURL)["waiting for propagation"]; ok && s.FinishedAt != nil {
		t.Logf("propagation wait (rfc2136, BIND on loopback): %v", s.FinishedAt.Sub(s.StartedAt))
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
