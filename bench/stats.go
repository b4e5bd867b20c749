package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certkeeper/certkeeper/internal/operation"
)

// result holds the durations of one workload per client.
type result struct {
	order []string
	runs  map[string][]time.Duration
	errs  map[string][]string
}

// alternate runs the workload reps times per client, the clients taking
// turns (A B C A B C …) so that machine drift spreads over all of them.
func alternate(ctx context.Context, clients []client, reps int, work func() [][]string) result {
	r := result{runs: map[string][]time.Duration{}, errs: map[string][]string{}}
	for _, c := range clients {
		r.order = append(r.order, c.name())
	}
	for i := range reps {
		for _, c := range clients {
			certs := work()
			start := time.Now()
			err := c.obtain(ctx, certs)
			d := time.Since(start)
			if err != nil {
				r.errs[c.name()] = append(r.errs[c.name()], err.Error())
				fmt.Fprintf(os.Stderr, "rep %d %s: FAILED: %v\n", i, c.name(), err)
				continue
			}
			r.runs[c.name()] = append(r.runs[c.name()], d)
			fmt.Fprintf(os.Stderr, "rep %d %s: %v\n", i, c.name(), d.Round(time.Millisecond))
		}
	}
	return r
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// markdown renders the result with the ratio of ref to every other client.
func (r result) markdown(title, ref string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n| client | runs | median | min | max | %s / client |\n| --- | --- | --- | --- | --- | --- |\n", title, ref)
	refMed := median(r.runs[ref])
	for _, name := range r.order {
		ds := r.runs[name]
		if len(ds) == 0 {
			fmt.Fprintf(&b, "| %s | 0 (failed %d runs: %s) | | | | |\n", name, len(r.errs[name]), firstLine(r.errs[name][0]))
			continue
		}
		ratio := "—"
		if name != ref && refMed > 0 {
			ratio = fmt.Sprintf("%.2f", float64(refMed)/float64(median(ds)))
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", name, len(ds), ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)), ratio)
	}
	b.WriteString("\n")
	for name, es := range r.errs {
		if len(r.runs[name]) > 0 {
			fmt.Fprintf(&b, "%s failed %d run(s); the first: %s\n\n", name, len(es), firstLine(es[0]))
		}
	}
	return b.String()
}

// stepTable renders time per step over every issuance of the run.
func stepTable(title string, mu *sync.Mutex, m map[operation.Step][]time.Duration) string {
	mu.Lock()
	defer mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "## Where the time goes (%s, every issuance of this run)\n\n| step | count | median | max |\n| --- | --- | --- | --- |\n", title)
	steps := make([]string, 0, len(m))
	for st := range m {
		steps = append(steps, string(st))
	}
	sort.Strings(steps)
	for _, st := range steps {
		ds := m[operation.Step(st)]
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", st, len(ds), ms(median(ds)), ms(slices.Max(ds)))
	}
	b.WriteString("\n")
	return b.String()
}

// stored counts the certificates GET /api/certificates lists.
func (c *certkeeper) stored(ctx context.Context) int {
	st, resp, err := c.do(ctx, http.MethodGet, "/api/certificates", nil)
	if err != nil || st != http.StatusOK {
		return -1
	}
	var list []json.RawMessage
	if json.NewDecoder(resp.Body).Decode(&list) != nil {
		return -1
	}
	return len(list)
}

// loadReport is what the load generator process prints.
type loadReport struct {
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	Seconds  float64       `json:"seconds"`
	P50      time.Duration `json:"p50"`
	P99      time.Duration `json:"p99"`
}

// loadTest runs the load generator in a second process against
// GET /api/state/{id} and GET /api/certificates, with issuances
// certificates being issued meanwhile (each polled every 250 ms).
func loadTest(ctx context.Context, c *certkeeper, d time.Duration, issuances int, pprofDir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the bench binary: %w", err)
	}
	stored := c.stored(ctx)
	var b strings.Builder
	fmt.Fprintf(&b, "## API under load (Go load generator in a second process, 32 connections, %v each, %d certificates stored, %d issuances kept running)\n\n| request | req/s | p50 | p99 | errors | issuances completed (failed) meanwhile |\n| --- | --- | --- | --- | --- | --- |\n",
		d, stored, issuances)
	for _, path := range []string{c.lastState, c.base + "/api/certificates"} {
		bg := &certkeeper{base: c.base, key: c.key, pid: c.pid, http: c.http, pollEvery: 250 * time.Millisecond}
		bgCtx, stop := context.WithCancel(ctx)
		var done, failed atomic.Int64
		var wg sync.WaitGroup
		for range issuances {
			wg.Go(func() {
				for bgCtx.Err() == nil {
					switch err := bg.obtain(bgCtx, [][]string{{uniqueName("load")}}); {
					case err == nil:
						done.Add(1)
					case bgCtx.Err() == nil:
						failed.Add(1)
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond) // let the issuances get going
		var out []byte
		gen := func() error {
			out, err = exec.CommandContext(ctx, self, "-load-url", path, "-load-key", c.key, "-load-seconds", fmt.Sprint(int(d.Seconds()))).Output()
			return nil
		}
		if pprofDir != "" && c.pprof != "" {
			name := "load-state"
			if strings.HasSuffix(path, "/api/certificates") {
				name = "load-certificates"
			}
			if perr := c.profile(ctx, pprofDir, name, max(1, int(d.Seconds())-1), gen); perr != nil {
				stop()
				wg.Wait()
				return "", perr
			}
		} else {
			_ = gen()
		}
		n, nf := done.Load(), failed.Load()
		stop()
		wg.Wait()
		if err != nil {
			return "", fmt.Errorf("running the load generator: %w", err)
		}
		var lr loadReport
		if err := json.Unmarshal(out, &lr); err != nil {
			return "", fmt.Errorf("reading the load generator's report %q: %w", out, err)
		}
		fmt.Fprintf(&b, "| GET %s | %.0f | %.2f ms | %.2f ms | %d | %d (%d) |\n", strings.TrimPrefix(path, c.base),
			float64(lr.Requests)/lr.Seconds, float64(lr.P50)/1e6, float64(lr.P99)/1e6, lr.Errors, n, nf)
	}
	b.WriteString("\n")
	return b.String(), nil
}

// profile runs work while taking a CPU profile of secs seconds from
// certkeeper's profiler, then a heap profile, into dir/<name>.cpu.pprof and
// dir/<name>.heap.pprof.
func (c *certkeeper) profile(ctx context.Context, dir, name string, secs int, work func() error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fetch := func(path, file string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.pprof+path, nil)
		resp, err := (&http.Client{Timeout: time.Duration(secs+30) * time.Second}).Do(req)
		if err != nil {
			return fmt.Errorf("fetching %s: %w", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fetching %s: status %d", path, resp.StatusCode)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, file), b, 0o644)
	}
	cpuErr := make(chan error, 1)
	go func() { cpuErr <- fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), name+".cpu.pprof") }()
	time.Sleep(100 * time.Millisecond)
	if err := work(); err != nil {
		<-cpuErr // the profile must end before the next one starts
		return err
	}
	if err := fetch("/debug/pprof/heap", name+".heap.pprof"); err != nil {
		<-cpuErr
		return err
	}
	return <-cpuErr
}

// generateLoad is the load generator process: 32 workers GET url for d.
func generateLoad(url, key string, d time.Duration) loadReport {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			local := make([]time.Duration, 0, 4096)
			buf := make([]byte, 32<<10)
			for time.Now().Before(end) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("X-Functions-Key", key)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	r := loadReport{Requests: len(lat), Errors: int(errs.Load()), Seconds: secs}
	if len(lat) > 0 {
		r.P50 = lat[len(lat)/2]
		r.P99 = lat[len(lat)*99/100]
	}
	return r
}

// firstLine is the first line of an error text, at most 300 bytes, with how
// many more lines (one per failed certificate) it had.
func firstLine(s string) string {
	first, rest, _ := strings.Cut(s, "\n")
	if len(first) > 300 {
		first = first[:300] + "…"
	}
	if n := strings.Count(rest, "\n") + 1; rest != "" {
		first += fmt.Sprintf(" (and %d more)", n)
	}
	return first
}
