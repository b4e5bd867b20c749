// Package dns holds DNS-01 validation: the Provider interface that DNS
// services implement (one sub-package per service), the choice of zone and
// provider for a name, CNAME delegation (dnsAlias, and CNAMEs followed at
// _acme-challenge.<name>), the checks made before an order is placed (every
// record has a zone, the CNAMEs exist, the zone is delegated to its
// provider's name servers), the grouping of challenge records into RRsets,
// and the propagation check that waits until every authoritative server (or
// configured resolver) answers with the record.
package dns

import "context"

// Provider writes and removes TXT records in the zones of one DNS service
// account. Implementations are safe for concurrent use.
type Provider interface {
	// Present makes the TXT RRset at fqdn (fully qualified, with a trailing
	// dot, inside zone) contain every one of values. Values already there for
	// other challenges are kept.
	Present(ctx context.Context, zone, fqdn string, values []string) error
	// CleanUp removes values from the TXT RRset at fqdn. Values that are not
	// there are not an error; other values are kept.
	CleanUp(ctx context.Context, zone, fqdn string, values []string) error
}

// ZoneLister is implemented by providers that can list the zones they manage.
type ZoneLister interface {
	// Zones returns the zone names (no trailing dot) the account manages.
	Zones(ctx context.Context) ([]string, error)
}

// NameServerReporter is implemented by providers that know the name servers
// a zone is served from (Cloudflare, Route 53, Azure DNS, Google Cloud DNS,
// Custom DNS…), so that the zone's delegation can be checked before an
// order is placed.
type NameServerReporter interface {
	// NameServers returns the host names of the name servers that serve
	// zone (no trailing dot needed); an empty list means unknown.
	NameServers(ctx context.Context, zone string) ([]string, error)
}
