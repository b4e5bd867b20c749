package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// operationView is what GET /api/operations/{id} answers.
type operationView struct {
	ID              string     `json:"id"`
	Kind            string     `json:"kind"`
	CertificateName string     `json:"certificateName"`
	Status          string     `json:"status"`
	CurrentStep     string     `json:"currentStep,omitempty"`
	Steps           []stepView `json:"steps"`
	FailedStep      string     `json:"failedStep,omitempty"`
	Error           string     `json:"error,omitempty"`
	VersionID       string     `json:"versionId,omitempty"`
	Attempt         int        `json:"attempt"`
	CreatedAt       time.Time  `json:"createdAt"`
	UpdatedAt       time.Time  `json:"updatedAt"`
}

type stepView struct {
	Name       string     `json:"name"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	DurationMs *int64     `json:"durationMs,omitempty"`
	Error      string     `json:"error,omitempty"`
	CA         string     `json:"ca,omitempty"`
}

// certificateItem is one item of GET /api/certificates.
type certificateItem struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	DNSNames        []string `json:"dnsNames"`
	DNSProviderName string   `json:"dnsProviderName"`
	CreatedOn       string   `json:"createdOn"`
	ExpiresOn       string   `json:"expiresOn"`
	X509Thumbprint  string   `json:"x509Thumbprint"`
	KeyType         string   `json:"keyType"`
	KeySize         *int     `json:"keySize"`
	KeyCurveName    *string  `json:"keyCurveName"`
	ReuseKey        bool     `json:"reuseKey"`
	IsExpired       bool     `json:"isExpired"`
	ACMEEndpoint    string   `json:"acmeEndpoint"`
	DNSAlias        string   `json:"dnsAlias"`
	SerialNumber    string   `json:"serialNumber"`
	Revoked         bool     `json:"revoked"`
	// Renewal is the certificate's item of GET /api/renewals (issue 5).
	Renewal *renewalItem `json:"renewal,omitempty"`
}

// renewalItem is one item of GET /api/renewals.
type renewalItem struct {
	CertificateName string  `json:"certificateName"`
	Status          string  `json:"status"`
	StatusKind      string  `json:"statusKind"`
	Message         string  `json:"message"`
	NextCheck       *string `json:"nextCheck"`
	LastCheckedAt   *string `json:"lastCheckedAt"`
	RenewAt         *string `json:"renewAt"`
	Source          string  `json:"source"`
	Failures        int     `json:"failures"`
	OperationID     string  `json:"operationId,omitempty"`
}

// env is what client commands get from the process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal is true when stderr is a terminal: progress is drawn there.
	terminal bool
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	// Flags may come after positional arguments: `issue www.example.test --wait`.
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") {
				if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
					i++
					flags = append(flags, args[i])
				}
			}
			continue
		}
		positional = append(positional, a)
	}
	if err := fs.Parse(append(flags, append([]string{"--"}, positional...)...)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	return nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func newFlagSet(name, usageLine string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: certkeeper %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

func cmdIssue(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("issue", "issue [flags] DNSNAME...", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	name := fs.String("name", "", "certificate name (default: derived from the first DNS name)")
	provider := fs.String("provider", "", "DNS provider name (default: the one whose zone holds the names)")
	keyType := fs.String("key-type", "", "RSA or EC (default RSA)")
	keySize := fs.Int("key-size", 0, "RSA key size: 2048, 3072 or 4096")
	curve := fs.String("curve", "", "EC curve: P-256, P-384 or P-521")
	alias := fs.String("alias", "", "CNAME-delegation target for the challenge records")
	profile := fs.String("profile", "", "ACME profile")
	reuseKey := fs.Bool("reuse-key", false, "keep the private key across renewals")
	wait := fs.Bool("wait", false, "wait until the certificate is issued, showing each step")
	var cas caList
	fs.Var(&cas, "ca", "CA to use, by configured name; repeat or separate with commas to fail over in order (default: defaultCAs)")
	chain := fs.String("preferred-chain", "", "common name of the top issuer of the chain to download, when the CA offers alternates")
	dry := fs.Bool("dry-run", false, "run every check (zones, CNAMEs, CAA, DNS credentials, CA and profile) without ordering")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &usageError{errors.New("issue needs at least one DNS name")}
	}
	c, err := build()
	if err != nil {
		return err
	}
	body := map[string]any{"dnsNames": fs.Args()}
	for k, v := range map[string]string{"certificateName": *name, "dnsProviderName": *provider, "keyType": *keyType,
		"keyCurveName": *curve, "dnsAlias": *alias, "profile": *profile} {
		if v != "" {
			body[k] = v
		}
	}
	if *keySize != 0 {
		body["keySize"] = *keySize
	}
	if *reuseKey {
		body["reuseKey"] = true
	}
	if len(cas) > 0 {
		body["ca"] = []string(cas)
	}
	if *chain != "" {
		body["preferredChain"] = *chain
	}
	if *dry {
		return dryRun(ctx, c, e, body, *jsonOut)
	}
	return startOperation(ctx, c, e, "/api/certificate", body, *wait, *jsonOut)
}

func cmdRenew(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("renew", "renew [flags] NAME", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	wait := fs.Bool("wait", false, "wait until the certificate is renewed, showing each step")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{errors.New("renew needs exactly one certificate name")}
	}
	c, err := build()
	if err != nil {
		return err
	}
	return startOperation(ctx, c, e, "/api/certificate/"+url.PathEscape(fs.Arg(0))+"/renew", nil, *wait, *jsonOut)
}

// startOperation POSTs a request that answers 202 and reports the
// operation, or follows it to its end with wait.
func startOperation(ctx context.Context, c *client, e env, path string, body any, wait, jsonOut bool) error {
	resp, err := c.do(ctx, http.MethodPost, path, body, http.StatusAccepted)
	if err != nil {
		return err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	id := pathBase(loc)
	if !wait {
		if jsonOut {
			return writeJSONTo(e.stdout, map[string]string{"operationId": id, "location": loc})
		}
		fmt.Fprintf(e.stdout, "operation %s accepted\nfollow it with: certkeeper status %s\n", id, id)
		return nil
	}
	op, err := follow(ctx, c, e, id, jsonOut)
	if err != nil {
		return err
	}
	if jsonOut {
		return writeJSONTo(e.stdout, op)
	}
	fmt.Fprintf(e.stdout, "certificate %s is ready (version %s)\n", op.CertificateName, op.VersionID)
	return nil
}

func pathBase(loc string) string {
	if u, err := url.Parse(loc); err == nil {
		return path.Base(u.Path)
	}
	return path.Base(loc)
}

// follow polls the operation until it ends, drawing its steps on stderr (a
// spinner on a terminal, one line per step otherwise, nothing with JSON).
func follow(ctx context.Context, c *client, e env, id string, quiet bool) (*operationView, error) {
	shown := 0
	frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
	tick := 0
	clear := func() {
		if e.terminal && !quiet {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
	}
	showSteps := func(op *operationView) {
		if quiet {
			return
		}
		for ; shown < len(op.Steps); shown++ {
			st := op.Steps[shown]
			if st.FinishedAt == nil {
				break
			}
			clear()
			mark := "✓"
			if st.Error != "" {
				mark = "✗"
			}
			if !e.terminal {
				mark = "-"
			}
			name := st.Name
			if st.CA != "" {
				name += " [" + st.CA + "]"
			}
			fmt.Fprintf(e.stderr, "%s %s (%s)\n", mark, name, time.Duration(deref(st.DurationMs))*time.Millisecond)
		}
	}
	delay := 100 * time.Millisecond
	for {
		resp, err := c.do(ctx, http.MethodGet, "/api/operations/"+url.PathEscape(id), nil, http.StatusOK, http.StatusAccepted)
		if err != nil {
			clear()
			var ae *apiError
			if errors.As(err, &ae) && ae.Operation != nil {
				showSteps(ae.Operation)
			}
			return nil, err
		}
		var op operationView
		if err := decode(resp, &op); err != nil {
			return nil, err
		}
		showSteps(&op)
		if resp.StatusCode == http.StatusOK {
			clear()
			return &op, nil
		}
		if e.terminal && !quiet {
			step := op.CurrentStep
			if step == "" {
				step = "waiting for a worker"
			}
			fmt.Fprintf(e.stderr, "\r\033[K%c %s", frames[tick%len(frames)], step)
			tick++
		}
		select {
		case <-ctx.Done():
			clear()
			return nil, fmt.Errorf("stopped waiting; the operation goes on: certkeeper status %s", id)
		case <-time.After(delay):
		}
		delay = min(delay*3/2, time.Second)
	}
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func cmdRevoke(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("revoke", "revoke [flags] NAME...", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	reason := fs.String("reason", "", "RFC 5280 reason: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation (or its number)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &usageError{errors.New("revoke needs at least one certificate name")}
	}
	c, err := build()
	if err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return revokeMany(ctx, c, e, fs.Args(), *reason, *jsonOut)
	}
	var body any
	if *reason != "" {
		if n, err := strconv.Atoi(*reason); err == nil {
			body = map[string]any{"reason": n}
		} else {
			body = map[string]any{"reason": *reason}
		}
	}
	resp, err := c.do(ctx, http.MethodPost, "/api/certificate/"+url.PathEscape(fs.Arg(0))+"/revoke", body, http.StatusOK)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if *jsonOut {
		return writeJSONTo(e.stdout, map[string]any{"certificateName": fs.Arg(0), "revoked": true})
	}
	fmt.Fprintf(e.stdout, "certificate %s is revoked\n", fs.Arg(0))
	return nil
}

func cmdList(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("list", "list [flags]", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &usageError{errors.New("list takes no arguments")}
	}
	c, err := build()
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/certificates", nil, http.StatusOK)
	if err != nil {
		return err
	}
	var items []certificateItem
	if err := decode(resp, &items); err != nil {
		return err
	}
	if err := addRenewals(ctx, c, items); err != nil {
		return err
	}
	if *jsonOut {
		return writeJSONTo(e.stdout, items)
	}
	return writeTable(e.stdout, items, time.Now())
}

// addRenewals fills each item's Renewal from GET /api/renewals; a server
// without that route (404) leaves them empty.
func addRenewals(ctx context.Context, c *client, items []certificateItem) error {
	if len(items) == 0 {
		return nil
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/renewals", nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil
	}
	var renewals []renewalItem
	if err := decode(resp, &renewals); err != nil {
		return err
	}
	byName := make(map[string]*renewalItem, len(renewals))
	for i := range renewals {
		byName[renewals[i].CertificateName] = &renewals[i]
	}
	for i := range items {
		items[i].Renewal = byName[items[i].Name]
	}
	return nil
}

// renewalColumns are the RENEWAL and NEXT RENEWAL cells of a certificate.
func renewalColumns(r *renewalItem, now time.Time) (string, string) {
	if r == nil {
		return "-", "-"
	}
	state := r.StatusKind
	if r.Failures > 0 {
		state = fmt.Sprintf("%s (%d failures)", state, r.Failures)
	}
	next := "-"
	if r.RenewAt != nil && r.StatusKind != "revoked" {
		if t, err := time.Parse(time.RFC3339, *r.RenewAt); err == nil {
			if d := t.Sub(now); d > 0 {
				next = "in " + humanDuration(d)
			} else {
				next = "due"
			}
		}
	}
	if r.StatusKind == "renewing" {
		next = "now"
	}
	return state, next
}

// writeTable prints certificates as a table: name, names, expires in,
// provider, status, renewal state and next renewal.
func writeTable(w io.Writer, items []certificateItem, now time.Time) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "no certificates yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDNS NAMES\tEXPIRES IN\tPROVIDER\tSTATUS\tRENEWAL\tNEXT RENEWAL")
	for _, it := range items {
		expires, status := "-", "valid"
		if t, err := time.Parse(time.RFC3339, it.ExpiresOn); err == nil {
			expires = humanDuration(t.Sub(now))
		}
		switch {
		case it.Revoked:
			status = "revoked"
		case it.IsExpired:
			status = "expired"
		}
		provider := it.DNSProviderName
		if provider == "" {
			provider = "-"
		}
		renewal, next := renewalColumns(it.Renewal, now)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Name, strings.Join(it.DNSNames, ","), expires, provider, status,
			renewal, next)
	}
	return tw.Flush()
}

// humanDuration writes d as "89d", "5h", "12m" or "expired".
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "expired"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
}

func cmdStatus(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("status", "status [flags] OPERATION_ID", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{errors.New("status needs exactly one operation id")}
	}
	c, err := build()
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/operations/"+url.PathEscape(fs.Arg(0)), nil, http.StatusOK, http.StatusAccepted)
	var op *operationView
	var failure error
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.Operation == nil {
			return err
		}
		op, failure = ae.Operation, err
	} else {
		op = new(operationView)
		if err := decode(resp, op); err != nil {
			return err
		}
	}
	if *jsonOut {
		if err := writeJSONTo(e.stdout, op); err != nil {
			return err
		}
		if failure != nil {
			return silentError{failure}
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "operation %s: %s %s, %s\n", op.ID, op.Kind, op.CertificateName, op.Status)
	for _, st := range op.Steps {
		name := st.Name
		if st.CA != "" {
			name += " [" + st.CA + "]"
		}
		line := fmt.Sprintf("  %-36s %s", name, st.StartedAt.Local().Format("15:04:05.000"))
		if st.DurationMs != nil {
			line += fmt.Sprintf("  %s", time.Duration(*st.DurationMs)*time.Millisecond)
		}
		if st.Error != "" {
			line += "  failed"
		}
		fmt.Fprintln(e.stdout, line)
	}
	return failure
}

// silentError is a failure already reported on stdout (as JSON): the exit
// code says it, nothing more is printed.
type silentError struct{ err error }

func (e silentError) Error() string { return e.err.Error() }

func cmdGet(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("get", "get [flags] NAME --out DIR", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	out := fs.String("out", "", "directory to write cert.pem, chain.pem, fullchain.pem and privkey.pem to (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{errors.New("get needs exactly one certificate name")}
	}
	if *out == "" {
		return &usageError{errors.New("get needs --out DIR")}
	}
	c, err := build()
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/certificates/"+url.PathEscape(fs.Arg(0))+"/download?format=pem", nil, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	bundle, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the certificate: %w", err)
	}
	files, err := splitBundle(bundle)
	if err != nil {
		return err
	}
	written, err := writeFiles(*out, files)
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSONTo(e.stdout, map[string]any{"certificateName": fs.Arg(0), "files": written})
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", strings.Join(written, ", "))
	return nil
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
