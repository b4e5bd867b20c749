// Command bench measures certkeeper against certbot and lego on one local
// Pebble CA and one BIND9 server in the same run: each workload runs against
// each client in alternation so that machine drift cancels, and the result
// is a Markdown report of medians, spreads and ratios.
//
// Run it with bench/run, which installs what it needs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// options are the command-line flags.
type options struct {
	reps       int
	concurrent int
	smoke      bool
	out        string
	clients    string
	loadSecs   int
	// seed is how many certificates the certkeeper client has stored
	// before it starts (the API load); startupSeed how many the start-up
	// instance has, seedDue the fraction of those past their renewal moment.
	seed        int
	startupSeed int
	seedDue     float64
	// loadIssuances is how many issuances run during the API load.
	loadIssuances int
	// pprofDir, when set, receives CPU and heap profiles of certkeeper
	// during an extra concurrent run and during the API load.
	pprofDir string
	// workers is certkeeper's jobs.workers; 0 keeps its default.
	workers int
	// floorConcurrency bounds the issuer floor's issuances in flight.
	floorConcurrency int
}

func main() {
	var o options
	flag.IntVar(&o.reps, "reps", 5, "repetitions of each single-certificate workload per client")
	flag.IntVar(&o.concurrent, "concurrent", 20, "certificates in the concurrent workload")
	flag.BoolVar(&o.smoke, "smoke", false, "one certificate per client, no timing claims")
	flag.StringVar(&o.out, "out", "", "write the Markdown report here (default stdout)")
	flag.StringVar(&o.clients, "clients", "certbot,lego,issuer,certkeeper", "clients to run")
	flag.IntVar(&o.loadSecs, "load-seconds", 5, "duration of the API load test")
	flag.IntVar(&o.seed, "seed", 1000, "certificates stored in certkeeper's database before it starts (the API load runs against them)")
	flag.IntVar(&o.startupSeed, "startup-seed", 10000, "certificates stored for the start-up and idle-memory workload (0: skip it)")
	flag.Float64Var(&o.seedDue, "seed-due", 0.005, "fraction of the start-up instance's certificates past their renewal moment")
	flag.IntVar(&o.loadIssuances, "load-issuances", 50, "issuances kept running during the API load")
	flag.IntVar(&o.workers, "workers", 0, "certkeeper's jobs.workers (0: its default, 20)")
	flag.IntVar(&o.floorConcurrency, "floor-concurrency", 20, "issuances the issuer floor runs at once (certkeeper's jobs.workers; 0: all); Pebble v2.10.3 deadlocks with 200 at once")
	flag.StringVar(&o.pprofDir, "pprof", "", "write CPU and heap profiles of certkeeper (an extra concurrent run, the API load) to this directory")
	loadURL := flag.String("load-url", "", "internal: run as the load generator against this URL")
	loadKey := flag.String("load-key", "", "internal: the API key of the load generator")
	flag.Parse()
	if *loadURL != "" {
		r := generateLoad(*loadURL, *loadKey, time.Duration(o.loadSecs)*time.Second)
		_ = json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	report, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if o.out == "" {
		fmt.Print(report)
		return
	}
	if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run starts the stack and the clients and runs every workload.
func run(ctx context.Context, o options) (string, error) {
	s, err := startStack(ctx)
	if err != nil {
		return "", err
	}
	defer s.stop()

	var clients []client
	var ck *certkeeper
	var iss *issuerAlone
	for _, name := range strings.Split(o.clients, ",") {
		var c client
		switch name {
		case "certbot":
			c, err = newCertbot(s)
		case "lego":
			c, err = newLego(ctx, s)
		case "issuer":
			iss, err = newIssuerAlone(s, o.floorConcurrency)
			c = iss
		case "certkeeper":
			var env []string
			if o.pprofDir != "" {
				port, perr := freePort()
				if perr != nil {
					return "", perr
				}
				env = append(env, fmt.Sprintf("CERTKEEPER_DEBUG_PPROF=127.0.0.1:%d", port))
			}
			ck, err = newCertkeeper(ctx, s, seedOptions{N: o.seed}, o.workers, env...)
			c = ck
		default:
			err = fmt.Errorf("unknown client %q", name)
		}
		if err != nil {
			return "", err
		}
		clients = append(clients, c)
	}

	var r strings.Builder
	fmt.Fprintf(&r, "# certkeeper benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&r, "Machine: %s, %d CPUs, %s. %s\n\n", machine(), runtime.NumCPU(), runtime.Version(), versions())
	fmt.Fprintf(&r, "Pebble with PEBBLE_VA_NOSLEEP=1, PEBBLE_AUTHZREUSE=0, PEBBLE_WFE_NONCEREJECT=0, one profile; BIND9 on loopback with a TSIG-updatable zone. All clients use EC P-256 keys and DNS-01 through RFC 2136 to the same BIND. Every client's account is registered in an unmeasured warm-up issuance.\n\n")

	// Warm-up: registers accounts, fills caches, proves every client works.
	for _, c := range clients {
		start := time.Now()
		if err := c.obtain(ctx, [][]string{{uniqueName("warm")}}); err != nil {
			return "", fmt.Errorf("warm-up of %s: %w", c.name(), err)
		}
		fmt.Fprintf(os.Stderr, "warm-up %s: %v\n", c.name(), time.Since(start).Round(time.Millisecond))
	}
	if o.smoke {
		fmt.Fprintf(&r, "Smoke mode: every client (%s) obtained one certificate.\n", o.clients)
		if ck != nil && o.seed > 0 {
			fmt.Fprintf(&r, "certkeeper lists %d certificates (%d seeded).\n", ck.stored(ctx), o.seed)
		}
		return r.String(), nil
	}

	if ck != nil && o.startupSeed > 0 {
		sr, err := startupWorkload(ctx, s, seedOptions{N: o.startupSeed, Due: o.seedDue}, o.reps)
		if err != nil {
			return "", err
		}
		r.WriteString(sr)
	}

	// Workload 1: one certificate, one name.
	w1 := alternate(ctx, clients, o.reps, func() [][]string { return [][]string{{uniqueName("one")}} })
	r.WriteString(w1.markdown("One certificate, one name (start to certificate in hand)", "certkeeper"))

	// Workload 2: one certificate, 10 names with a wildcard. lego's
	// dnsupdate provider is sequential with a 60 s pause between names by
	// default, so it is left out here.
	ten := func() [][]string {
		base := uniqueLabel("ten")
		names := []string{base + "." + zone, "*." + base + "." + zone}
		for i := range 8 {
			names = append(names, fmt.Sprintf("n%d.%s.%s", i, base, zone))
		}
		return [][]string{names}
	}
	w2 := alternate(ctx, without(clients, "lego"), o.reps, ten)
	r.WriteString(w2.markdown("One certificate, 10 names including a wildcard", "certkeeper"))

	// Workload 3: N certificates at once (certbot one after another).
	many := func() [][]string {
		certs := make([][]string, o.concurrent)
		for i := range certs {
			certs[i] = []string{uniqueName(fmt.Sprintf("m%d", i))}
		}
		return certs
	}
	var peakRSS int
	stopRSS := make(chan struct{})
	if ck != nil {
		go func() {
			for {
				select {
				case <-stopRSS:
					return
				case <-time.After(50 * time.Millisecond):
					peakRSS = max(peakRSS, rssKB(ck.pid))
				}
			}
		}()
	}
	w3reps := max(1, o.reps/2)
	w3 := alternate(ctx, without(clients, "lego"), w3reps, many)
	close(stopRSS)
	r.WriteString(w3.markdown(fmt.Sprintf("%d certificates submitted at once (certbot: one after another, one process each; issuer floor: %s in flight; certkeeper: %s job workers)",
		o.concurrent, orAll(o.floorConcurrency), orDefault(o.workers)), "certkeeper"))

	if ck != nil && ck.pprof != "" {
		// One more certkeeper run of the concurrent workload, profiled
		// for as long as its median run took.
		secs := max(1, int(median(w3.runs["certkeeper"]).Seconds()+0.999))
		err := ck.profile(ctx, o.pprofDir, "concurrent", secs, func() error { return ck.obtain(ctx, many()) })
		if err != nil {
			fmt.Fprintf(&r, "The profiled extra certkeeper run of this workload failed: %v\n\n", err)
		} else {
			fmt.Fprintf(&r, "Profiles of an extra certkeeper run of this workload (%d s CPU profile, heap after it) are in %s.\n\n", secs, o.pprofDir)
		}
	}
	if iss != nil {
		r.WriteString(stepTable("issuer alone, timed by its progress callback", &iss.mu, iss.steps))
	}
	if ck != nil {
		r.WriteString(stepTable("certkeeper, from its operations' step timestamps", &ck.mu, ck.steps))
	}
	if ck != nil {
		idle := rssKB(ck.pid)
		fmt.Fprintf(&r, "## certkeeper memory\n\nRSS after the runs (idle, %d certificates stored): %.1f MB; peak RSS sampled every 50 ms during the concurrent runs: %.1f MB.\n\n",
			ck.stored(ctx), float64(idle)/1024, float64(peakRSS)/1024)
		lr, err := loadTest(ctx, ck, time.Duration(o.loadSecs)*time.Second, o.loadIssuances, o.pprofDir)
		if err != nil {
			return "", err
		}
		r.WriteString(lr)
	}
	return r.String(), nil
}

func without(cs []client, name string) []client {
	return slices.DeleteFunc(slices.Clone(cs), func(c client) bool { return c.name() == name })
}

func uniqueLabel(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func uniqueName(prefix string) string { return uniqueLabel(prefix) + "." + zone }

func machine() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`) + " " + runtime.GOARCH
		}
	}
	return runtime.GOOS
}

func versions() string {
	var parts []string
	if out, err := exec.Command("certbot", "--version").CombinedOutput(); err == nil {
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	parts = append(parts, "lego v5.6.0 (library)", "Pebble v2.10.3")
	if out, err := exec.Command("/usr/sbin/named", "-v").CombinedOutput(); err == nil {
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	return strings.Join(parts, ", ") + "."
}

func orAll(n int) string {
	if n <= 0 {
		return "all"
	}
	return fmt.Sprint(n)
}

func orDefault(n int) string {
	if n <= 0 {
		return "the default 20"
	}
	return fmt.Sprint(n)
}
