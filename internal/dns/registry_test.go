package dns

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/issuer"
)

// memProvider keeps TXT RRsets in memory. It stands in for a DNS service
// in tests of zone selection and grouping; the real providers are tested
// against BIND and an HTTP server in their own packages.
type memProvider struct {
	mu      sync.Mutex
	sets    map[string][]string // fqdn → values
	calls   []string
	failFor string // fqdn whose Present and CleanUp fail
}

func newMem() *memProvider { return &memProvider{sets: make(map[string][]string)} }

func (m *memProvider) Present(_ context.Context, zone, fqdn string, values []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "present "+zone+" "+fqdn+" "+strings.Join(values, ","))
	if fqdn == m.failFor {
		return errors.New("server exploded")
	}
	for _, v := range values {
		if !slices.Contains(m.sets[fqdn], v) {
			m.sets[fqdn] = append(m.sets[fqdn], v)
		}
	}
	return nil
}

func (m *memProvider) CleanUp(_ context.Context, zone, fqdn string, values []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "cleanup "+zone+" "+fqdn+" "+strings.Join(values, ","))
	if fqdn == m.failFor {
		return errors.New("server exploded")
	}
	m.sets[fqdn] = slices.DeleteFunc(m.sets[fqdn], func(v string) bool { return slices.Contains(values, v) })
	if len(m.sets[fqdn]) == 0 {
		delete(m.sets, fqdn)
	}
	return nil
}

func (m *memProvider) snapshot() (map[string][]string, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sets := make(map[string][]string)
	for k, v := range m.sets {
		sets[k] = slices.Clone(v)
	}
	calls := slices.Clone(m.calls)
	slices.Sort(calls)
	return sets, calls
}

// listingProvider is a memProvider that lists its zones.
type listingProvider struct {
	*memProvider
	zones []string
	err   error
	lists atomic.Int32
}

func (l *listingProvider) Zones(context.Context) ([]string, error) {
	l.lists.Add(1)
	return l.zones, l.err
}

func newTestRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := NewRegistry([]Named{
		{Name: "main", Provider: newMem(), Zones: []string{"example.test", "Sub.Example.Test."}},
		{Name: "other", Provider: newMem(), Zones: []string{"deep.sub.example.test", "other.test"}},
		{Name: "listed", Provider: &listingProvider{memProvider: newMem(), zones: []string{"Listed.Test.", "zone.listed.test"}}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestZoneFor(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)
	tests := []struct {
		name         string
		provider     string
		wantProvider string
		wantZone     string
		wantNoZone   bool
		wantUnknown  bool
	}{
		{name: "example.test", wantProvider: "main", wantZone: "example.test"},
		{name: "www.example.test", wantProvider: "main", wantZone: "example.test"},
		{name: "WWW.Example.TEST.", wantProvider: "main", wantZone: "example.test"},
		{name: "*.example.test", wantProvider: "main", wantZone: "example.test"},
		{name: "a.sub.example.test", wantProvider: "main", wantZone: "sub.example.test"},
		{name: "*.sub.example.test", wantProvider: "main", wantZone: "sub.example.test"},
		{name: "x.deep.sub.example.test", wantProvider: "other", wantZone: "deep.sub.example.test"},
		{name: "_acme-challenge.deep.sub.example.test.", wantProvider: "other", wantZone: "deep.sub.example.test"},
		{name: "notexample.test", wantNoZone: true},
		{name: "www.notexample.test", wantNoZone: true},
		{name: "example.test.evil", wantNoZone: true},
		{name: "test", wantNoZone: true},
		{name: "", wantNoZone: true},
		{name: "*.", wantNoZone: true},
		{name: "a.zone.listed.test", wantProvider: "listed", wantZone: "zone.listed.test"},
		{name: "b.listed.test", wantProvider: "listed", wantZone: "listed.test"},
		// An explicit provider restricts the choice, even to a shorter zone.
		{name: "x.deep.sub.example.test", provider: "main", wantProvider: "main", wantZone: "sub.example.test"},
		{name: "www.example.test", provider: "other", wantNoZone: true},
		{name: "www.example.test", provider: "nobody", wantUnknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.provider, func(t *testing.T) {
			t.Parallel()
			named, zone, err := r.ZoneFor(t.Context(), tt.name, tt.provider)
			var nz *NoZoneError
			switch {
			case tt.wantNoZone:
				if !errors.As(err, &nz) {
					t.Fatalf("ZoneFor = %q, %q, %v; want a NoZoneError", named.Name, zone, err)
				}
				if diff := cmp.Diff([]string{tt.name}, nz.Names); diff != "" {
					t.Errorf("NoZoneError.Names (-want +got):\n%s", diff)
				}
			case tt.wantUnknown:
				if !errors.Is(err, ErrUnknownProvider) || !strings.Contains(err.Error(), `"nobody"`) {
					t.Fatalf("ZoneFor error = %v, want ErrUnknownProvider naming the provider", err)
				}
			default:
				if err != nil {
					t.Fatalf("ZoneFor: %v", err)
				}
				if named.Name != tt.wantProvider || zone != tt.wantZone {
					t.Errorf("ZoneFor = %q, %q; want %q, %q", named.Name, zone, tt.wantProvider, tt.wantZone)
				}
			}
		})
	}
}

func TestNewRegistryErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		providers []Named
		wantParts []string
	}{
		{
			name: "duplicate name",
			providers: []Named{
				{Name: "a", Provider: newMem(), Zones: []string{"a.test"}},
				{Name: "a", Provider: newMem(), Zones: []string{"b.test"}},
			},
			wantParts: []string{`DNS provider name "a" is used more than once`},
		},
		{
			name: "zone claimed twice",
			providers: []Named{
				{Name: "a", Provider: newMem(), Zones: []string{"example.test"}},
				{Name: "b", Provider: newMem(), Zones: []string{"Example.Test."}},
			},
			wantParts: []string{`zone "example.test" is configured for both DNS providers "a" and "b"`},
		},
		{
			name: "every problem at once",
			providers: []Named{
				{Name: "", Provider: newMem(), Zones: []string{"a.test"}},
				{Name: "nolist", Provider: newMem()},
				{Name: "noimpl", Zones: []string{"c.test"}},
				{Name: "empty", Provider: newMem(), Zones: []string{"."}},
			},
			wantParts: []string{
				"a DNS provider has no name",
				`DNS provider "nolist" has no zones configured and cannot list its zones`,
				`DNS provider "noimpl" has no implementation`,
				`DNS provider "empty" has an empty zone name`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewRegistry(tt.providers, Options{})
			if err == nil {
				t.Fatal("NewRegistry succeeded, want an error")
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)
	tests := []struct {
		name        string
		names       []string
		provider    string
		wantMissing []string
		wantUnknown bool
	}{
		{name: "all covered", names: []string{"example.test", "*.example.test", "a.other.test", "x.listed.test"}},
		{name: "every missing name listed", names: []string{"notexample.test", "www.example.test", "*.nowhere.test", "test"}, wantMissing: []string{"notexample.test", "*.nowhere.test", "test"}},
		{name: "restricted to a provider", names: []string{"example.test", "a.other.test"}, provider: "other", wantMissing: []string{"example.test"}},
		{name: "unknown provider", names: []string{"example.test"}, provider: "nobody", wantUnknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := r.Check(t.Context(), tt.names, tt.provider)
			var nz *NoZoneError
			switch {
			case tt.wantUnknown:
				if !errors.Is(err, ErrUnknownProvider) {
					t.Fatalf("Check = %v, want ErrUnknownProvider", err)
				}
			case tt.wantMissing == nil:
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
			default:
				if !errors.As(err, &nz) {
					t.Fatalf("Check = %v, want a NoZoneError", err)
				}
				if diff := cmp.Diff(tt.wantMissing, nz.Names); diff != "" {
					t.Errorf("missing names (-want +got):\n%s", diff)
				}
				for _, n := range tt.wantMissing {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("error %q does not name %q", err, n)
					}
				}
			}
		})
	}
}

func TestZones(t *testing.T) {
	t.Parallel()
	broken := &listingProvider{memProvider: newMem(), err: errors.New("API answered 503")}
	good := &listingProvider{memProvider: newMem(), zones: []string{"b.test", "A.test."}}
	r, err := NewRegistry([]Named{
		{Name: "configured", Provider: newMem(), Zones: []string{"z.test", "y.test"}},
		{Name: "broken", Provider: broken},
		{Name: "good", Provider: good},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	got := r.Zones(ctx)
	if len(got) != 3 {
		t.Fatalf("Zones returned %d listings, want 3", len(got))
	}
	if got[1].Err == nil || !strings.Contains(got[1].Err.Error(), `listing zones of DNS provider "broken": API answered 503`) {
		t.Errorf("broken listing error = %v", got[1].Err)
	}
	got[1].Err = nil
	want := []ZoneListing{
		{ProviderName: "configured", Zones: []string{"y.test", "z.test"}},
		{ProviderName: "broken"},
		{ProviderName: "good", Zones: []string{"a.test", "b.test"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Zones (-want +got):\n%s", diff)
	}

	// A name under a working lister's zone resolves although another
	// lister fails; a name nowhere reports both.
	if named, zone, err := r.ZoneFor(ctx, "www.a.test", ""); err != nil || named.Name != "good" || zone != "a.test" {
		t.Errorf("ZoneFor(www.a.test) = %q, %q, %v", named.Name, zone, err)
	}
	_, _, err = r.ZoneFor(ctx, "www.c.test", "")
	var nz *NoZoneError
	if !errors.As(err, &nz) || !strings.Contains(err.Error(), "API answered 503") {
		t.Errorf("ZoneFor(www.c.test) = %v, want a NoZoneError mentioning the listing failure", err)
	}
	// Listings are cached.
	if n := good.lists.Load(); n != 1 {
		t.Errorf("good provider listed %d times, want 1", n)
	}
}

func TestSolverGrouping(t *testing.T) {
	t.Parallel()
	main, other := newMem(), newMem()
	main.failFor = "_acme-challenge.broken.example.test."
	r, err := NewRegistry([]Named{
		{Name: "main", Provider: main, Zones: []string{"example.test"}},
		{Name: "other", Provider: other, Zones: []string{"other.test"}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	challenges := []issuer.Challenge{
		{Domain: "example.test", Value: "apex"},
		{Domain: "example.test", Wildcard: true, Value: "wild"},
		{Domain: "www.other.test", Value: "www"},
		{Domain: "broken.example.test", Value: "b"},
	}
	s := r.Solver("", "")
	err = s.Present(ctx, challenges)
	if err == nil || !strings.Contains(err.Error(), `presenting TXT _acme-challenge.broken.example.test. through DNS provider "main": server exploded`) {
		t.Fatalf("Present error = %v", err)
	}
	sets, calls := main.snapshot()
	if diff := cmp.Diff(map[string][]string{"_acme-challenge.example.test.": {"apex", "wild"}}, sets); diff != "" {
		t.Errorf("main RRsets (-want +got):\n%s", diff)
	}
	wantCalls := []string{
		"present example.test _acme-challenge.broken.example.test. b",
		"present example.test _acme-challenge.example.test. apex,wild",
	}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("main calls (-want +got):\n%s", diff)
	}
	if sets, _ := other.snapshot(); !cmp.Equal(map[string][]string{"_acme-challenge.www.other.test.": {"www"}}, sets) {
		t.Errorf("other RRsets = %v", sets)
	}

	// CleanUp attempts every RRset, even with a cancelled context, and
	// reports the failing one.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = r.Solver("", "").CleanUp(cancelled, challenges)
	if err == nil || !strings.Contains(err.Error(), "removing TXT _acme-challenge.broken.example.test.") {
		t.Fatalf("CleanUp error = %v", err)
	}
	if sets, _ := main.snapshot(); len(sets) != 0 {
		t.Errorf("main RRsets after CleanUp = %v", sets)
	}
	if sets, _ := other.snapshot(); len(sets) != 0 {
		t.Errorf("other RRsets after CleanUp = %v", sets)
	}

	// A name without a zone fails before anything is written, naming it.
	err = r.Solver("other", "").Present(ctx, []issuer.Challenge{{Domain: "a.example.test", Value: "x"}, {Domain: "b.nowhere.test", Value: "y"}})
	var nz *NoZoneError
	if !errors.As(err, &nz) || !cmp.Equal([]string{"_acme-challenge.a.example.test.", "_acme-challenge.b.nowhere.test."}, nz.Names) {
		t.Errorf("Present without zones = %v", err)
	}
}

func TestInZone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, zone string
		want       bool
	}{
		{"example.test", "example.test", true},
		{"a.example.test", "example.test", true},
		{"notexample.test", "example.test", false},
		{"a.notexample.test", "example.test", false},
		{"example.test", "a.example.test", false},
		{"xexample.test", "example.test", false},
	}
	for _, tt := range tests {
		if got := inZone(tt.name, tt.zone); got != tt.want {
			t.Errorf("inZone(%q, %q) = %v, want %v", tt.name, tt.zone, got, tt.want)
		}
	}
}

func FuzzZoneFor(f *testing.F) {
	zones := []string{"example.test", "sub.example.test", "a.b.c.d", "xn--bcher-kva.test", "test"}
	for _, seed := range []string{
		"example.test", "*.example.test", "WWW.EXAMPLE.TEST.", "notexample.test", "a.sub.example.test",
		"sub.example.test.", "..example.test", "*.", "", ".", "x.a.b.c.d", "b.c.d", "ex\x00ample.test", "*.*.test",
	} {
		f.Add(seed)
	}
	r, err := NewRegistry([]Named{{Name: "p", Provider: newMem(), Zones: zones}}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		_, zone, err := r.ZoneFor(context.Background(), name, "")
		n := normalize(name)
		// The longest zone that is n or a label-boundary suffix of it.
		want := ""
		for _, z := range zones {
			if (n == z || strings.HasSuffix(n, "."+z)) && len(z) > len(want) {
				want = z
			}
		}
		if want == "" {
			var nz *NoZoneError
			if !errors.As(err, &nz) {
				t.Fatalf("ZoneFor(%q) = %q, %v; want a NoZoneError", name, zone, err)
			}
			return
		}
		if err != nil || zone != want {
			t.Fatalf("ZoneFor(%q) = %q, %v; want %q", name, zone, err, want)
		}
		// Case and a trailing dot do not change the answer.
		if _, z2, err := r.ZoneFor(context.Background(), strings.ToUpper(name)+".", ""); strings.ToLower(strings.ToUpper(name)) == strings.ToLower(name) && !strings.HasSuffix(name, ".") && (err != nil || z2 != zone) {
			t.Fatalf("ZoneFor(upper %q) = %q, %v; want %q", name, z2, err, zone)
		}
	})
}

// TestZoneConflict refuses to pick between two providers whose listings
// both hold a zone, and reports the conflict in both listings.
func TestZoneConflict(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry([]Named{
		{Name: "a", Provider: &listingProvider{memProvider: newMem(), zones: []string{"example.test", "a.test"}}},
		{Name: "b", Provider: &listingProvider{memProvider: newMem(), zones: []string{"Example.Test."}}},
		{Name: "c", Provider: newMem(), Zones: []string{"sub.example.test"}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, _, err = r.ZoneFor(ctx, "www.example.test", "")
	var ze *ZoneConflictError
	if !errors.As(err, &ze) || !cmp.Equal(ze.Providers, []string{"a", "b"}) || ze.Zone != "example.test" {
		t.Fatalf("ZoneFor = %v, want a ZoneConflictError for a and b", err)
	}
	// A longer zone, or a named provider, settles it.
	if p, z, err := r.ZoneFor(ctx, "www.sub.example.test", ""); err != nil || p.Name != "c" || z != "sub.example.test" {
		t.Errorf("ZoneFor(sub) = %q, %q, %v", p.Name, z, err)
	}
	if p, _, err := r.ZoneFor(ctx, "www.example.test", "b"); err != nil || p.Name != "b" {
		t.Errorf("ZoneFor with provider b = %q, %v", p.Name, err)
	}
	var got []string
	for _, l := range r.Zones(ctx) {
		msg := "<nil>"
		if l.Err != nil {
			msg = l.Err.Error()
		}
		got = append(got, l.ProviderName+": "+msg)
	}
	want := []string{
		"a: zone example.test is managed by several DNS providers (a, b); name one with dnsProviderName or configure zones",
		"b: zone example.test is managed by several DNS providers (a, b); name one with dnsProviderName or configure zones",
		"c: <nil>",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Zones errors (-want +got):\n%s", diff)
	}
}
