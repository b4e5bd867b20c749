package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the thumbprint is SHA-1 by definition, as the service computes it
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/renewal"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// seedBatch is how many certificates one transaction stores.
const seedBatch = 500

// seedOptions say what seedCertificates writes.
type seedOptions struct {
	// N is how many certificates.
	N int
	// Due is the fraction whose renewal moment has passed, so that the
	// first renewal scan renews them; the rest are due in 1 to 59 days.
	Due float64
	// Directory is the ACME directory the versions say they came from.
	Directory string
}

// seedCertificates writes o.N certificates into the SQLite database of
// dataDir before certkeeper starts, through internal/store and the built-in
// vault (the code the service stores issued versions with) and with the
// master key in keyFile, which it creates. Each certificate has one current
// version: an EC P-256 leaf signed by a local two-level CA, its chain (the
// intermediate), its private key sealed under the master key, and a renewal
// schedule as an issuance leaves it (RenewalSucceeded), with its next check
// spread over the hour before and six hours after now, as after a restart.
func seedCertificates(ctx context.Context, dataDir, keyFile string, o seedOptions) (time.Duration, error) {
	start := time.Now()
	key, encoded, err := secret.NewKey()
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(keyFile, []byte(encoded+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("writing the master key file: %w", err)
	}
	st, err := store.Open(ctx, filepath.Join(dataDir, "certkeeper.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, fmt.Errorf("opening the database to seed: %w", err)
	}
	defer st.Close()
	if err := st.CheckMasterKey(ctx, key.Seal, key.Open); err != nil {
		return 0, err
	}
	ca, err := newLocalCA()
	if err != nil {
		return 0, err
	}
	vs, err := ca.versions(o)
	if err != nil {
		return 0, err
	}
	b := vault.NewBuiltin(st, key)
	policy := renewal.Policy{Days: config.DefaultRenewBeforeDay}
	now := time.Now().UTC()
	for i := 0; i < len(vs); i += seedBatch {
		batch := vs[i:min(i+seedBatch, len(vs))]
		if err := b.PutMany(ctx, batch); err != nil {
			return 0, fmt.Errorf("seeding certificates %d to %d: %w", i, i+len(batch), err)
		}
		if err := st.Tx(ctx, func(tx *sql.Tx) error {
			for _, v := range batch {
				renewAt := policy.Lifetime(v.NotBefore, v.NotAfter, v.ID)
				next := now.Add(time.Duration(mrand.Int64N(int64(7*time.Hour))) - time.Hour)
				if renewAt.Before(now) {
					next = now.Add(-time.Duration(mrand.Int64N(int64(time.Hour))))
				}
				if err := st.RenewalSucceeded(ctx, tx, v.Name, "", v.ID, renewAt, next, renewal.StatusScheduled,
					"Issued; the CA's renewal information is asked at the next check."); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return 0, fmt.Errorf("seeding renewal schedules: %w", err)
		}
	}
	return time.Since(start), nil
}

// localCA is a root and an intermediate, made up for seeding.
type localCA struct {
	inter    *x509.Certificate
	interKey *ecdsa.PrivateKey
	chainPEM []byte
}

func newLocalCA() (*localCA, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"certkeeper bench"}, CommonName: "certkeeper bench root"},
		NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("creating the seeding root: %w", err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // P-256 signs several times faster than P-384
	if err != nil {
		return nil, err
	}
	interTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{Organization: []string{"certkeeper bench"}, CommonName: "certkeeper bench E1"},
		NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: now.Add(3 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("creating the seeding intermediate: %w", err)
	}
	inter, _ := x509.ParseCertificate(interDER)
	return &localCA{inter: inter, interKey: interKey,
		chainPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: interDER})}, nil
}

// versions makes o.N versions, on every CPU.
func (ca *localCA) versions(o seedOptions) ([]vault.Version, error) {
	vs := make([]vault.Version, o.N)
	errs := make([]error, o.N)
	due := int(float64(o.N) * o.Due)
	var wg sync.WaitGroup
	workers := runtime.NumCPU()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < o.N; i += workers {
				vs[i], errs[i] = ca.version(i, i < due, o.Directory)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// version makes certificate i: names spread over 40 teams' subdomains of the
// zone, one in ten with a wildcard, one in twenty-five with five names.
func (ca *localCA) version(i int, due bool, directory string) (vault.Version, error) {
	base := fmt.Sprintf("s%05d.team%02d.%s", i, i%40, zone)
	names := []string{base}
	switch {
	case i%25 == 0:
		for j := range 4 {
			names = append(names, fmt.Sprintf("n%d.%s", j, base))
		}
	case i%10 == 0:
		names = append(names, "*."+base)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return vault.Version{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return vault.Version{}, err
	}
	// 90-day certificates; the due ones were issued 61 to 70 days ago (their
	// renewal moment, 30 days before expiry, has passed), the others 1 to
	// 59 days ago.
	age := time.Duration(24+mrand.Int64N(58*24)) * time.Hour
	if due {
		age = time.Duration(61*24+mrand.Int64N(9*24)) * time.Hour
	}
	notBefore := time.Now().Add(-age).UTC().Truncate(time.Second)
	serial := new(big.Int).SetBytes(randomBytes(16))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: base}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notBefore.Add(90*24*time.Hour - time.Second),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.inter, &key.PublicKey, ca.interKey)
	if err != nil {
		return vault.Version{}, fmt.Errorf("signing seeded certificate %d: %w", i, err)
	}
	sum := sha1.Sum(der) //nolint:gosec // see import
	name := fmt.Sprintf("seed-%05d", i)
	return vault.Version{
		ID: operation.NewID(), Name: name,
		Spec:         certificate.Spec{Name: name, DNSNames: names, DNSProviderName: "BIND", KeyType: "EC", KeyCurveName: "P-256"},
		ACMEEndpoint: directory, CA: config.DefaultCAName,
		Serial: serial.Text(16), Thumbprint: strings.ToUpper(hex.EncodeToString(sum[:])),
		NotBefore: notBefore, NotAfter: tmpl.NotAfter,
		CertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		ChainPEM:  ca.chainPEM,
		KeyPEM:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		CertURL:   strings.TrimSuffix(directory, "/dir") + "/certZ/" + serial.Text(16),
		CreatedAt: notBefore.Add(time.Minute),
	}, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
