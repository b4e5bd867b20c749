package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/issuer"
)

// dryRunRecordPrefix starts the value of the TXT record a dry run writes
// and removes to prove a provider's credentials.
const dryRunRecordPrefix = "certkeeper-dry-run-"

// report collects dry-run checks.
type report struct {
	checks []api.DryRunCheck
}

func (r *report) add(check, subject, ca, status, format string, args ...any) {
	r.checks = append(r.checks, api.DryRunCheck{Check: check, Subject: subject, CA: ca, Status: status,
		Detail: fmt.Sprintf(format, args...)})
}

func statusOf(err error) string {
	if err != nil {
		return api.CheckFailed
	}
	return api.CheckPassed
}

// DryRun implements api.CABackend: every check an issuance of spec depends
// on, without placing an order — each name's zone, the zone's delegation
// where the provider reports its name servers, the _acme-challenge CNAMEs
// (and the dnsAlias delegation), each DNS provider's credentials (a
// harmless TXT record is written and removed), and for each CA to try its
// reachability, External Account Binding, profile and the names' CAA
// records. OK is true when every check that does not concern one CA passed
// and at least one CA passed all of its checks.
func (a *App) DryRun(ctx context.Context, spec certificate.Spec) (api.DryRunReport, error) {
	var r report
	providers := a.dryRunDNS(ctx, spec, &r)
	a.dryRunProviders(ctx, spec, providers, &r)
	a.dryRunCAs(ctx, spec, &r)

	ok := true
	selected := false
	for _, c := range r.checks {
		switch {
		case c.Check == "caSelection":
			selected = c.Status == api.CheckPassed
		case c.CA == "" && c.Status == api.CheckFailed:
			ok = false
		}
	}
	return api.DryRunReport{OK: ok && selected, Checks: r.checks}, nil
}

// dryRunDNS checks the zones, delegations and CNAMEs, and returns the names
// each provider answers for.
func (a *App) dryRunDNS(ctx context.Context, spec certificate.Spec, r *report) map[string][]string {
	providers := map[string][]string{}
	if spec.DNSProviderName != "" {
		if _, _, err := a.dns.ZoneFor(ctx, "", spec.DNSProviderName); errors.Is(err, dns.ErrUnknownProvider) {
			r.add("dnsProvider", spec.DNSProviderName, "", api.CheckFailed, "The DNS provider %q is not configured.", spec.DNSProviderName)
			return providers
		}
	}
	zones := map[string]string{} // zone -> provider
	var order []string
	zoneOf := func(name string) (string, bool) {
		p, zone, err := a.dns.ZoneFor(ctx, name, spec.DNSProviderName)
		if err != nil {
			r.add("zone", name, "", api.CheckFailed, "%v", err)
			return "", false
		}
		r.add("zone", name, "", api.CheckPassed, "in zone %s of DNS provider %s", zone, p.Name)
		if _, seen := zones[zone]; !seen {
			order = append(order, zone)
		}
		zones[zone] = p.Name
		return p.Name, true
	}
	aliasProvider := ""
	if spec.DNSAlias != "" {
		p, ok := zoneOf(spec.DNSAlias)
		if !ok {
			return providers
		}
		aliasProvider = p
	}
	for _, name := range spec.DNSNames {
		p, ok := zoneOf(name)
		if !ok {
			continue
		}
		if aliasProvider != "" {
			p = aliasProvider
		}
		providers[p] = append(providers[p], name)
	}
	for _, zone := range order {
		known, err := a.dns.CheckDelegation(ctx, zones[zone], zone)
		switch {
		case !known && err == nil:
			r.add("delegation", zone, "", api.CheckSkipped, "DNS provider %s does not report the name servers it serves the zone from", zones[zone])
		case err != nil:
			r.add("delegation", zone, "", api.CheckFailed, "%v", err)
		default:
			r.add("delegation", zone, "", api.CheckPassed, "delegated to the name servers of DNS provider %s", zones[zone])
		}
	}
	for _, name := range spec.DNSNames {
		a.dryRunCNAME(ctx, spec, name, r)
	}
	return providers
}

// dryRunCNAME checks _acme-challenge.<name>: without dnsAlias it must not be
// a CNAME (the TXT record is written there); with dnsAlias it must be a
// CNAME to _acme-challenge.<dnsAlias>.
func (a *App) dryRunCNAME(ctx context.Context, spec certificate.Spec, name string, r *report) {
	owner := "_acme-challenge." + strings.TrimPrefix(name, "*.")
	target, err := a.dns.ChallengeCNAME(ctx, name)
	if err != nil {
		r.add("cname", name, "", api.CheckWarning, "%v", err)
		return
	}
	if spec.DNSAlias == "" {
		if target == "" {
			r.add("cname", name, "", api.CheckPassed, "%s is not a CNAME; the TXT record is written there", owner)
			return
		}
		hint := strings.TrimPrefix(target, "_acme-challenge.")
		r.add("cname", name, "", api.CheckFailed, "%s is a CNAME to %s: set dnsAlias to %s, or remove the CNAME", owner, target, hint)
		return
	}
	want := "_acme-challenge." + spec.DNSAlias
	switch target {
	case want:
		r.add("cname", name, "", api.CheckPassed, "%s is a CNAME to %s", owner, want)
	case "":
		r.add("cname", name, "", api.CheckFailed, "%s is not a CNAME; create %s CNAME %s.", owner, owner, want)
	default:
		r.add("cname", name, "", api.CheckFailed, "%s is a CNAME to %s, not to %s", owner, target, want)
	}
}

// dryRunProviders proves each provider's credentials by writing a TXT
// record with a random value where the challenge records of its names go,
// and removing it.
func (a *App) dryRunProviders(ctx context.Context, spec certificate.Spec, providers map[string][]string, r *report) {
	names := make([]string, 0, len(providers))
	for p := range providers {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		var challenges []issuer.Challenge
		for _, n := range providers[p] {
			challenges = append(challenges, issuer.Challenge{
				Domain: strings.TrimPrefix(n, "*."), Wildcard: strings.HasPrefix(n, "*."), Value: dryRunRecordPrefix + randomHex(8)})
		}
		solver := a.dns.Solver(p, spec.DNSAlias)
		err := solver.Present(ctx, challenges)
		cerr := solver.CleanUp(ctx, challenges)
		switch {
		case err != nil:
			r.add("dnsProvider", p, "", api.CheckFailed, "writing a test TXT record: %v", errors.Join(err, cerr))
		case cerr != nil:
			r.add("dnsProvider", p, "", api.CheckFailed, "a test TXT record was written but removing it failed: %v", cerr)
		default:
			r.add("dnsProvider", p, "", api.CheckPassed, "wrote and removed a test TXT record for %s", strings.Join(providers[p], ", "))
		}
	}
}

// dryRunCAs checks every CA the certificate would try, in order, and which
// one the order would go to.
func (a *App) dryRunCAs(ctx context.Context, spec certificate.Spec, r *report) {
	cands, err := a.cas.Candidates(spec.CA)
	if err != nil {
		r.add("caSelection", strings.Join(spec.CA, ", "), "", api.CheckFailed, "%v", err)
		return
	}
	var chosen string
	var skipped []string
	for _, ca := range cands {
		reason := a.dryRunCA(ctx, spec, ca, r)
		if reason == "" && chosen == "" {
			chosen = ca.Name()
		} else if chosen == "" {
			skipped = append(skipped, ca.Name()+": "+reason)
		}
	}
	if chosen == "" {
		r.add("caSelection", strings.Join(names(cands), ", "), "", api.CheckFailed, "no CA can issue: %s", strings.Join(skipped, "; "))
		return
	}
	detail := "the order would go to CA " + chosen
	if len(skipped) > 0 {
		detail += " (skipping " + strings.Join(skipped, "; ") + ")"
	}
	r.add("caSelection", chosen, "", api.CheckPassed, "%s", detail)
}

// dryRunCA checks one CA and returns why it cannot issue, or "".
func (a *App) dryRunCA(ctx context.Context, spec certificate.Spec, ca *issuer.Issuer, r *report) string {
	name := ca.Name()
	dir, err := ca.FetchDirectory(ctx)
	if err != nil {
		r.add("ca", name, name, api.CheckFailed, "%v", err)
		return "unreachable"
	}
	switch uri := ca.StoredAccountURI(ctx); {
	case dir.Meta.ExternalAccountRequired && !ca.HasEAB() && uri == "":
		r.add("ca", name, name, api.CheckFailed, "the directory %s answered; the CA requires an External Account Binding and none is configured", ca.DirectoryURL())
		return "no External Account Binding"
	case uri != "":
		r.add("ca", name, name, api.CheckPassed, "the directory %s answered; account %s", ca.DirectoryURL(), uri)
	default:
		r.add("ca", name, name, api.CheckPassed, "the directory %s answered; an account is registered on first use", ca.DirectoryURL())
	}
	profile := spec.Profile
	if profile == "" {
		profile = ca.DefaultProfile()
	}
	reason := ""
	switch err := issuer.CheckProfile(dir, profile); {
	case profile == "":
		r.add("profile", name, name, api.CheckSkipped, "no profile asked for; the CA's default applies")
	case err != nil:
		r.add("profile", profile, name, api.CheckFailed, "%v", err)
		reason = "does not offer the profile"
	case len(dir.Meta.Profiles) == 0:
		r.add("profile", profile, name, api.CheckWarning, "the CA lists no profiles; it decides on the order")
	default:
		r.add("profile", profile, name, api.CheckPassed, "offered: %s", dir.Meta.Profiles[profile])
	}
	checks := a.dns.CheckCAA(ctx, spec.DNSNames, lowerAll(dir.Meta.CaaIdentities), ca.StoredAccountURI(ctx))
	for _, c := range checks {
		switch {
		case c.Err != nil:
			r.add("caa", c.Name, name, api.CheckWarning, "%v; the CA's own check decides", c.Err)
		case c.Allowed:
			r.add("caa", c.Name, name, api.CheckPassed, "%s", c.Reason)
		default:
			r.add("caa", c.Name, name, api.CheckFailed, "%s", c.Reason)
			if reason == "" {
				reason = "CAA forbids issuance"
			}
		}
	}
	return reason
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b)
}
