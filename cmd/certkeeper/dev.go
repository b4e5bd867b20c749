package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/devstack"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// devProviderName is the DNS provider name of the embedded DNS server.
const devProviderName = "dev"

// dev runs the whole stack in one process: an embedded ACME CA (Pebble's
// packages) and an embedded authoritative DNS server, with the normal
// service pointed at both — nothing special-cased beyond the configuration.
func dev(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var zones stringList
	fs.Var(&zones, "zone", "DNS zone the embedded DNS server serves (repeatable; default "+devstack.DefaultZone+")")
	listen := fs.String("listen", firstNonEmpty(getenv(config.EnvListen), "127.0.0.1:8080"), "address of the API; also "+config.EnvListen)
	dataDir := fs.String("data-dir", getenv(config.EnvDataDir), "where state is kept (default: a new temporary directory); also "+config.EnvDataDir)
	keep := fs.Bool("keep", false, "keep the temporary data directory on exit")
	logLevel := fs.String("log-level", firstNonEmpty(getenv(config.EnvLogLevel), "info"), "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Errorf("dev takes no arguments, got %q", fs.Args())}
	}
	if len(zones) == 0 {
		zones = stringList{devstack.DefaultZone}
	}
	logger, err := newLogger(config.Log{Level: *logLevel, Format: "text"}, stderr)
	if err != nil {
		return &usageError{err}
	}

	dir := *dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "certkeeper-dev-"); err != nil {
			return fmt.Errorf("creating a data directory: %w", err)
		}
		if !*keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}

	stack, err := devstack.Start(ctx, devstack.Options{Zones: zones, Dir: filepath.Join(dir, "ca"), Logger: logger})
	if err != nil {
		return fmt.Errorf("starting the embedded CA and DNS server: %w", err)
	}
	defer stack.Close()

	key := secret.String(getenv(envAPIKey))
	if key == "" {
		if key, err = auth.GenerateKey(); err != nil {
			return err
		}
	}
	cfg := config.Default()
	cfg.Listen = *listen
	cfg.DataDir = dir
	cfg.MasterKeyFile = filepath.Join(dir, "master.key")
	cfg.ACME.Endpoint = stack.DirectoryURL
	cfg.ACME.CABundle = stack.CABundle
	cfg.ACME.Profile = devstack.DefaultProfile
	cfg.DNS.Resolvers = []string{stack.DNSAddr}
	cfg.DNS.PropagationTimeout = 30 * time.Second
	cfg.DNS.Providers = []config.DNSProvider{{
		Name: devProviderName, Type: config.ProviderRFC2136, Zones: stack.Zones, TTL: config.DefaultTTL,
		PropagationTimeout: 30 * time.Second,
		RFC2136: &config.RFC2136{Nameserver: stack.DNSAddr, TSIGKeyName: stack.TSIGKeyName,
			TSIGAlgorithm: stack.TSIGAlgorithm, TSIGSecret: stack.TSIGSecret},
	}}
	cfg.Auth.APIKeys = []config.APIKey{{Name: "dev", Key: key, Roles: []string{string(auth.RoleAdmin)}}}
	cfg.Log.Level = *logLevel
	if err := cfg.Validate(); err != nil {
		return &usageError{fmt.Errorf("the dev configuration has problems:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	started := time.Now()
	return runService(ctx, &cfg, logger, func(addr string) {
		printDevBanner(stdout, devBanner{
			URL: "http://" + addr, Key: key.Reveal(), Zone: stack.Zones[0], CARoot: stack.IssuerRootPath,
			DataDir: dir, Temporary: *dataDir == "" && !*keep,
		})
		logger.Info("dev stack ready", "startup", time.Since(started).Round(time.Millisecond))
	})
}

type devBanner struct {
	URL, Key, Zone, CARoot, DataDir string
	Temporary                       bool
}

// printDevBanner prints, once, what a person needs to use the dev stack.
func printDevBanner(w io.Writer, b devBanner) {
	removed := ""
	if b.Temporary {
		removed = " (removed on exit; --keep keeps it)"
	}
	fmt.Fprintf(w, `
certkeeper dev is running: an embedded ACME CA and DNS server for %[3]s, no network needed.

  Dashboard  %[1]s/   (sign in with the API key)
  API        %[1]s
  API key    %[2]s
  CA root    %[4]s   (the root issued certificates chain to)
  data       %[5]s%[6]s

Issue a certificate and fetch it, in another terminal:

  export CERTKEEPER_URL=%[1]s CERTKEEPER_API_KEY=%[2]s
  certkeeper issue --wait www.%[3]s
  certkeeper get www-%[7]s --out ./www

or with curl:

  curl -i -X POST %[1]s/api/certificate -H 'X-Functions-Key: %[2]s' \
       -H 'Content-Type: application/json' -d '{"dnsNames":["www.%[3]s"]}'

Stop with Ctrl-C.
`, b.URL, b.Key, b.Zone, b.CARoot, b.DataDir, removed, strings.ReplaceAll(b.Zone, ".", "-"))
}
