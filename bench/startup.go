package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startupCheckInterval is renewal.checkInterval of the start-up instance,
// so that its first renewal scan comes soon after start.
const startupCheckInterval = 3 * time.Second

// startupWorkload seeds a separate certkeeper instance with o.N
// certificates, then measures reps times the time from exec of the binary
// to the first /readyz 200 (polled every 2 ms) and the RSS at that moment,
// stopping the process between runs; a last start measures the RSS once
// the first renewal scan has settled (no CPU used for 2 s).
func startupWorkload(ctx context.Context, s *stack, o seedOptions, reps int) (string, error) {
	in, err := prepareCertkeeper(ctx, s, "startup", o, startupCheckInterval, 0)
	if err != nil {
		return "", err
	}
	var ready []time.Duration
	var rssReady []int
	for i := range reps + 1 {
		cmd, d, err := startTimed(ctx, in)
		if err != nil {
			return "", err
		}
		ready = append(ready, d)
		rssReady = append(rssReady, rssKB(cmd.Process.Pid))
		fmt.Fprintf(os.Stderr, "start-up %d with %d certificates: %v, RSS %.1f MB\n", i, o.N, d.Round(time.Millisecond), float64(rssReady[i])/1024)
		if i < reps {
			stopProcess(cmd)
			continue
		}
		settled, peak, after := settle(ctx, cmd.Process.Pid)
		stopProcess(cmd)
		var b strings.Builder
		fmt.Fprintf(&b, "## Start-up and idle memory with %d stored certificates (SQLite)\n\n", o.N)
		fmt.Fprintf(&b, "Seeded before the first start through internal/store and the built-in vault: one version each (EC P-256 leaf from a local CA, its intermediate as chain, private key sealed under the master key), %.1f %% of them past their renewal moment, next checks spread over the hour before and six hours after now. renewal.checkInterval %v.\n\n", o.Due*100, startupCheckInterval)
		fmt.Fprintf(&b, "| measure | runs | median | min | max |\n| --- | --- | --- | --- | --- |\n")
		fmt.Fprintf(&b, "| exec → /readyz 200 | %d | %s | %s | %s |\n", len(ready), ms(median(ready)), ms(slices.Min(ready)), ms(slices.Max(ready)))
		mb := func(kb int) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }
		rs := slices.Clone(rssReady)
		slices.Sort(rs)
		fmt.Fprintf(&b, "| RSS at /readyz 200 | %d | %s | %s | %s |\n\n", len(rs), mb(rs[len(rs)/2]), mb(rs[0]), mb(rs[len(rs)-1]))
		fmt.Fprintf(&b, "RSS idle after the first renewal scan settled (%v after ready, less than 5 %% of a CPU used for 2 s; 3 min at most): **%s**; peak RSS sampled every 250 ms until then: %s.\n\n",
			after.Round(100*time.Millisecond), mb(settled), mb(peak))
		return b.String(), nil
	}
	return "", nil
}

// startTimed execs certkeeper and returns it once /readyz answers 200, with
// the time that took.
func startTimed(ctx context.Context, in *ckInstance) (*exec.Cmd, time.Duration, error) {
	logFile, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, err
	}
	defer logFile.Close()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	cmd := exec.Command(in.bin, "serve", "--config", in.cfgPath)
	cmd.Env = ckEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("starting certkeeper: %w", err)
	}
	exited := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(exited) }()
	for time.Since(start) < 60*time.Second {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.base+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, time.Since(start), nil
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(in.logPath)
			return nil, 0, fmt.Errorf("certkeeper exited before it was ready:\n%s", log)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return nil, 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	_ = cmd.Process.Kill()
	return nil, 0, fmt.Errorf("certkeeper not ready within 60s")
}

// stopProcess stops cmd with SIGTERM, or kills it after 20 s.
func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	for range 200 {
		if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

// settle waits until pid has used less than 5 % of a CPU for 2 s, at
// least two renewal check intervals after now, and at most 3 minutes; it
// returns the RSS then, the peak RSS sampled meanwhile, and how long it
// waited.
func settle(ctx context.Context, pid int) (rss, peak int, waited time.Duration) {
	start := time.Now()
	var cpu []int
	for time.Since(start) < 3*time.Minute && ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		rss = rssKB(pid)
		peak = max(peak, rss)
		cpu = append(cpu, cpuTicks(pid))
		if time.Since(start) > 2*startupCheckInterval && len(cpu) > 8 && cpu[len(cpu)-1]-cpu[len(cpu)-9] < 10 {
			break
		}
	}
	return rss, peak, time.Since(start)
}

// cpuTicks is the user plus system CPU time of pid, in clock ticks
// (1/100 s on Linux).
func cpuTicks(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields start after its ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}
