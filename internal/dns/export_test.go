package dns

// SetAuthoritativeLookup makes r find authoritative servers through
// resolvers instead of /etc/resolv.conf and ask them on port instead of 53.
func SetAuthoritativeLookup(r *Registry, resolvers []string, port string) {
	r.systemResolvers = resolvers
	r.authPort = port
}
