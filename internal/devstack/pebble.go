package devstack

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Validity periods of Pebble's profiles, in seconds.
const (
	defaultProfileValidity    = 90 * 24 * 60 * 60 // 90 days
	shortlivedProfileValidity = 6 * 24 * 60 * 60  // 6 days
)

// Ports Pebble's VA would use for HTTP-01 and TLS-ALPN-01; certkeeper only
// answers DNS-01, so nothing listens there.
const (
	vaHTTPPort = 5002
	vaTLSPort  = 5001
)

// pebbleCA is Pebble's CA, VA and WFE assembled as cmd/pebble does, minus the
// configuration file and the listeners.
type pebbleCA struct {
	ca  *ca.CAImpl
	wfe wfe.WebFrontEndImpl
}

// pebbleSettings is what newPebble needs.
type pebbleSettings struct {
	logger             *log.Logger
	keyAlgorithm       string // "ecdsa" or "rsa"
	resolver           string // host:port of the DNS server the VA asks
	nonceRejectPercent int
	blockedDomains     []string
}

// envMu serializes the short windows in which newPebble sets Pebble's
// environment variables.
var envMu sync.Mutex

// newPebble assembles Pebble in memory. Pebble's VA and WFE read some of
// their settings from the environment only (PEBBLE_VA_NOSLEEP,
// PEBBLE_AUTHZREUSE, PEBBLE_WFE_NONCEREJECT, …), so newPebble sets them for
// the duration of the constructors, under envMu, and restores the previous
// values before it returns. Nothing else in certkeeper reads these variables.
func newPebble(set pebbleSettings) (*pebbleCA, error) {
	store := db.NewMemoryStore()
	for _, d := range set.blockedDomains {
		if err := store.AddBlockedDomain(d); err != nil {
			return nil, fmt.Errorf("blocking domain %q: %w", d, err)
		}
	}
	profiles := map[string]ca.Profile{
		DefaultProfile:    {Description: "The default profile: 90 days", ValidityPeriod: defaultProfileValidity, PromoteCommonName: true},
		ShortlivedProfile: {Description: "A short-lived profile: 6 days", ValidityPeriod: shortlivedProfileValidity, PromoteCommonName: true},
	}
	p := &pebbleCA{}
	err := withEnv(map[string]string{
		"PEBBLE_VA_NOSLEEP":          "1",
		"PEBBLE_VA_ALWAYS_VALID":     "0",
		"PEBBLE_AUTHZREUSE":          "0",
		"PEBBLE_WFE_NONCEREJECT":     strconv.Itoa(set.nonceRejectPercent),
		"PEBBLE_WFE_ORDERS_PER_PAGE": "",
	}, func() {
		p.ca = ca.New(set.logger, store, "", set.keyAlgorithm, 0, 1, profiles)
		v := va.New(set.logger, vaHTTPPort, vaTLSPort, false, set.resolver, store)
		p.wfe = wfe.New(set.logger, store, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("configuring pebble: %w", err)
	}
	return p, nil
}

// withEnv runs fn with the environment variables vars set (an empty value
// unsets), then restores what was there.
func withEnv(vars map[string]string, fn func()) error {
	envMu.Lock()
	defer envMu.Unlock()
	type prev struct {
		value string
		set   bool
	}
	saved := make(map[string]prev, len(vars))
	var errs []error
	for k, v := range vars {
		old, ok := os.LookupEnv(k)
		saved[k] = prev{old, ok}
		if v == "" {
			errs = append(errs, os.Unsetenv(k))
		} else {
			errs = append(errs, os.Setenv(k, v))
		}
	}
	defer func() {
		for k, p := range saved {
			if p.set {
				_ = os.Setenv(k, p.value)
			} else {
				_ = os.Unsetenv(k)
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fn()
	return nil
}

// issuerRootPEM returns the root Pebble's certificates chain to.
func (p *pebbleCA) issuerRootPEM() []byte { return p.ca.GetRootCert(0).PEM() }

// acmeHandler is the ACME API (the directory at wfe.DirectoryPath).
func (p *pebbleCA) acmeHandler() http.Handler { return p.wfe.Handler() }

// managementHandler is Pebble's management interface without the endpoints
// that hand out the CA's private keys: the roots and intermediates, the
// status of a certificate by serial, and setting renewal information.
func (p *pebbleCA) managementHandler() http.Handler {
	h := p.wfe.ManagementHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, prefix := range []string{"/roots/", "/intermediates/", "/cert-status-by-serial/", "/set-renewal-info/"} {
			if strings.HasPrefix(r.URL.Path, prefix) {
				h.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
}
