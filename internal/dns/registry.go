package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultPropagationTimeout bounds Wait when neither the provider nor
// Options set a timeout.
const DefaultPropagationTimeout = 5 * time.Minute

// zoneListTTL is how long a ZoneLister's answer is reused.
const zoneListTTL = time.Minute

// ErrUnknownProvider is returned (wrapped) when a provider name is not
// configured.
var ErrUnknownProvider = errors.New("unknown DNS provider")

// NoZoneError is returned when names have no configured zone. Callers get
// it with errors.As.
type NoZoneError struct {
	// Names are the names, as given, that no zone contains.
	Names []string
}

func (e *NoZoneError) Error() string {
	return "no configured DNS zone contains " + strings.Join(e.Names, ", ")
}

// Named is a configured provider instance.
type Named struct {
	// Name is the dnsProviderName clients see and send.
	Name     string
	Provider Provider
	// Zones are the zones this provider writes to. When empty, the provider
	// must implement ZoneLister and its listing is used.
	Zones []string
	// TTL is the TTL the provider writes records with; informational.
	TTL int
	// PropagationTimeout bounds Wait for records in this provider's zones;
	// zero means Options.PropagationTimeout.
	PropagationTimeout time.Duration
}

// Options tunes a Registry.
type Options struct {
	// Resolvers are host:port servers that Wait asks (recursion desired).
	// Empty means each zone's authoritative servers, found through the
	// system resolver and asked on port 53 without recursion.
	Resolvers []string
	// PropagationTimeout is the default bound of Wait; zero means
	// DefaultPropagationTimeout.
	PropagationTimeout time.Duration
	// FollowCNAMEs makes the solver follow a CNAME at
	// _acme-challenge.<name> (chains too) and write the record at its
	// target, in whichever configured zone holds it.
	FollowCNAMEs bool
	// Logger receives debug and warning lines; nil discards them.
	Logger *slog.Logger
}

// ZoneConflictError is a zone that several providers claim (through their
// zone listings; configured zones are checked by NewRegistry). Certkeeper
// does not pick one silently: the request must name its dnsProviderName,
// or the configuration must give the providers explicit zones.
type ZoneConflictError struct {
	Zone      string
	Providers []string
}

func (e *ZoneConflictError) Error() string {
	return fmt.Sprintf("zone %s is managed by several DNS providers (%s); name one with dnsProviderName or configure zones",
		e.Zone, strings.Join(e.Providers, ", "))
}

// ZoneListing is one provider's zones, or why they could not be listed.
type ZoneListing struct {
	ProviderName string
	// Zones are lowercase without a trailing dot, sorted.
	Zones []string
	// Err is why the listing failed, or the zones this provider shares
	// with others (*ZoneConflictError), joined.
	Err error
}

// Registry holds the configured providers and picks the provider and zone
// for a name. It is safe for concurrent use.
type Registry struct {
	providers []Named
	opts      Options
	logger    *slog.Logger

	// systemResolvers and authPort replace /etc/resolv.conf and port 53 in
	// the authoritative server lookup; tests set them.
	systemResolvers []string
	authPort        string

	mu    sync.Mutex
	lists map[string]cachedList // by provider name
}

type cachedList struct {
	zones   []string
	err     error
	expires time.Time
}

// NewRegistry checks providers and returns a Registry. Provider names must
// be unique, a zone may be configured for one provider only, and a provider
// without configured zones must implement ZoneLister.
func NewRegistry(providers []Named, opts Options) (*Registry, error) {
	var errs []error
	names := make(map[string]bool)
	zoneOwner := make(map[string]string)
	normalized := make([]Named, 0, len(providers))
	for _, p := range providers {
		switch {
		case p.Name == "":
			errs = append(errs, errors.New("a DNS provider has no name"))
		case names[p.Name]:
			errs = append(errs, fmt.Errorf("DNS provider name %q is used more than once", p.Name))
		}
		names[p.Name] = true
		if p.Provider == nil {
			errs = append(errs, fmt.Errorf("DNS provider %q has no implementation", p.Name))
		}
		zones := make([]string, 0, len(p.Zones))
		for _, z := range p.Zones {
			nz := normalize(strings.TrimSpace(z))
			if nz == "" {
				errs = append(errs, fmt.Errorf("DNS provider %q has an empty zone name", p.Name))
				continue
			}
			if owner, ok := zoneOwner[nz]; ok {
				if owner != p.Name {
					errs = append(errs, fmt.Errorf("zone %q is configured for both DNS providers %q and %q", nz, owner, p.Name))
				}
				continue
			}
			zoneOwner[nz] = p.Name
			zones = append(zones, nz)
		}
		if _, ok := p.Provider.(ZoneLister); len(p.Zones) == 0 && !ok && p.Provider != nil {
			errs = append(errs, fmt.Errorf("DNS provider %q has no zones configured and cannot list its zones", p.Name))
		}
		p.Zones = zones
		normalized = append(normalized, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring DNS providers: %w", err)
	}
	if opts.PropagationTimeout <= 0 {
		opts.PropagationTimeout = DefaultPropagationTimeout
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		providers: normalized,
		opts:      opts,
		logger:    logger.With("component", "dns"),
		authPort:  "53",
		lists:     make(map[string]cachedList),
	}, nil
}

// normalize lowercases name and drops a trailing dot and a leading "*.".
func normalize(name string) string {
	n := strings.TrimSuffix(strings.ToLower(name), ".")
	n = strings.TrimPrefix(n, "*.")
	return n
}

// inZone reports whether the normalized name is zone or below it, at a
// label boundary.
func inZone(name, zone string) bool {
	return name == zone || (len(name) > len(zone) && strings.HasSuffix(name, zone) && name[len(name)-len(zone)-1] == '.')
}

// provider returns the provider called name.
func (r *Registry) provider(name string) (Named, bool) {
	for _, p := range r.providers {
		if p.Name == name {
			return p, true
		}
	}
	return Named{}, false
}

// zones returns p's zones: configured ones, or its listing (cached for a
// minute, failures included so a broken API is not hammered).
func (r *Registry) zones(ctx context.Context, p Named) ([]string, error) {
	if len(p.Zones) > 0 {
		return p.Zones, nil
	}
	lister, ok := p.Provider.(ZoneLister)
	if !ok {
		return nil, nil
	}
	r.mu.Lock()
	c, ok := r.lists[p.Name]
	r.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.zones, c.err
	}
	listed, err := lister.Zones(ctx)
	var zones []string
	if err != nil {
		err = fmt.Errorf("listing zones of DNS provider %q: %w", p.Name, err)
		r.logger.WarnContext(ctx, "listing zones failed", "provider", p.Name, "error", err)
	} else {
		for _, z := range listed {
			if nz := normalize(z); nz != "" {
				zones = append(zones, nz)
			}
		}
		slices.Sort(zones)
		zones = slices.Compact(zones)
	}
	if ctx.Err() == nil {
		r.mu.Lock()
		r.lists[p.Name] = cachedList{zones: zones, err: err, expires: time.Now().Add(zoneListTTL)}
		r.mu.Unlock()
	}
	return zones, err
}

// ZoneFor returns the provider and zone (lowercase, no trailing dot) that
// name belongs to: the longest zone equal to name or a suffix of it at a
// label boundary, compared without case and trailing dot; "*.x" is looked
// up as "x". With providerName set only that provider's zones are
// considered. Errors: ErrUnknownProvider (wrapped), *ZoneConflictError when
// the best zone is claimed by several providers, *NoZoneError, possibly
// joined with the listing errors of providers that could not list zones.
func (r *Registry) ZoneFor(ctx context.Context, name, providerName string) (Named, string, error) {
	candidates := r.providers
	if providerName != "" {
		p, ok := r.provider(providerName)
		if !ok {
			return Named{}, "", fmt.Errorf("%w %q", ErrUnknownProvider, providerName)
		}
		candidates = []Named{p}
	}
	n := normalize(name)
	var (
		best     []Named
		bestZone string
		listErrs []error
	)
	for _, p := range candidates {
		zones, err := r.zones(ctx, p)
		if err != nil {
			listErrs = append(listErrs, err)
		}
		for _, z := range zones {
			if n == "" || !inZone(n, z) {
				continue
			}
			switch {
			case len(z) > len(bestZone):
				best, bestZone = []Named{p}, z
			case z == bestZone && best[len(best)-1].Name != p.Name:
				best = append(best, p)
			}
		}
	}
	if bestZone == "" {
		return Named{}, "", errors.Join(append([]error{&NoZoneError{Names: []string{name}}}, listErrs...)...)
	}
	if len(best) > 1 {
		names := make([]string, len(best))
		for i, p := range best {
			names[i] = p.Name
		}
		return Named{}, "", &ZoneConflictError{Zone: bestZone, Providers: names}
	}
	return best[0], bestZone, nil
}

// Check returns nil when every one of names has a zone (with providerName,
// a zone of that provider), else an error listing every name without one
// (a *NoZoneError, possibly joined with listing errors) or
// ErrUnknownProvider. With Options.FollowCNAMEs, a name whose challenge
// record is a CNAME into a configured zone has a zone. It is meant to run
// before an order is placed; see also Preflight.
func (r *Registry) Check(ctx context.Context, names []string, providerName string) error {
	_, err := r.Targets(ctx, names, providerName, "")
	return err
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Zones returns one listing per provider, in configuration order. A
// provider whose listing fails has Err set; the others are unaffected.
func (r *Registry) Zones(ctx context.Context) []ZoneListing {
	out := make([]ZoneListing, len(r.providers))
	var wg sync.WaitGroup
	for i, p := range r.providers {
		wg.Go(func() {
			zones, err := r.zones(ctx, p)
			zones = slices.Clone(zones)
			slices.Sort(zones)
			out[i] = ZoneListing{ProviderName: p.Name, Zones: zones, Err: err}
		})
	}
	wg.Wait()
	owners := make(map[string][]string)
	for _, l := range out {
		for _, z := range l.Zones {
			owners[z] = append(owners[z], l.ProviderName)
		}
	}
	for i := range out {
		var conflicts []error
		for _, z := range out[i].Zones {
			if len(owners[z]) > 1 {
				conflicts = append(conflicts, &ZoneConflictError{Zone: z, Providers: owners[z]})
			}
		}
		if len(conflicts) > 0 {
			out[i].Err = errors.Join(append([]error{out[i].Err}, conflicts...)...)
		}
	}
	return out
}

// propagationTimeout is p's bound for Wait.
func (r *Registry) propagationTimeout(p Named) time.Duration {
	if p.PropagationTimeout > 0 {
		return p.PropagationTimeout
	}
	return r.opts.PropagationTimeout
}
