package issuer

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"

	"github.com/go-acme/lego/v5/acme/api"

	"github.com/certkeeper/certkeeper/internal/operation"
)

// download fetches the issued certificate with its chain. With preferred
// set it also fetches the alternate chains the CA links to (Link:
// rel="alternate", RFC 8555 section 7.4.2) and returns the first whose top
// issuer's common name is preferred; when none is, the default chain.
func (i *Issuer) download(ctx context.Context, core *api.Core, certURL, preferred string) ([]byte, error) {
	const step = operation.StepFinalizing
	if preferred == "" {
		raw, err := core.Certificates.Get(ctx, certURL, true)
		if err != nil {
			return nil, fail(step, "downloading certificate "+certURL, err)
		}
		return raw.Cert, nil
	}
	all, err := core.Certificates.GetAll(ctx, certURL, true)
	if err != nil {
		return nil, fail(step, "downloading certificate "+certURL+" and its alternate chains", err)
	}
	chains := make(map[string][]byte, len(all))
	for u, raw := range all {
		chains[u] = raw.Cert
	}
	chosen, ok := pickChain(certURL, chains, preferred)
	if ok {
		i.log.DebugContext(ctx, "chose the preferred chain", "preferred_chain", preferred, "chain_url", chosen)
	} else {
		i.log.InfoContext(ctx, "no chain has the preferred top issuer; using the default chain",
			"preferred_chain", preferred, "chains", len(chains), "top_issuers", topIssuers(chains))
	}
	return chains[chosen], nil
}

// pickChain returns the URL of the chain whose top issuer's common name
// equals preferred (without regard to case), trying the default chain first
// and then the alternates in URL order. It returns defaultURL and false when
// no chain matches.
func pickChain(defaultURL string, chains map[string][]byte, preferred string) (string, bool) {
	urls := make([]string, 0, len(chains))
	for u := range chains {
		if u != defaultURL {
			urls = append(urls, u)
		}
	}
	slices.Sort(urls)
	urls = append([]string{defaultURL}, urls...)
	want := strings.TrimSpace(preferred)
	for _, u := range urls {
		if top, ok := topIssuer(chains[u]); ok && strings.EqualFold(top, want) {
			return u, true
		}
	}
	return defaultURL, false
}

// topIssuer returns the issuer common name of the last certificate of a PEM
// chain: the root the chain leads to.
func topIssuer(bundle []byte) (string, bool) {
	var last *x509.Certificate
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", false
		}
		last = c
	}
	if last == nil {
		return "", false
	}
	return last.Issuer.CommonName, true
}

// topIssuers lists the top issuer of every chain, for a log line.
func topIssuers(chains map[string][]byte) []string {
	var out []string
	for _, c := range chains {
		if top, ok := topIssuer(c); ok {
			out = append(out, top)
		}
	}
	slices.Sort(out)
	return out
}
