package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/certkeeper/certkeeper/internal/config"
)

// caBundles reads the caBundle file of every named CA.
func caBundles(cfg *config.Config) (map[string][]byte, error) {
	out := map[string][]byte{}
	for i, ca := range cfg.CAs {
		if ca.CABundle == "" {
			continue
		}
		b, err := os.ReadFile(ca.CABundle)
		if err != nil {
			return nil, fmt.Errorf("reading cas[%d].caBundle: %w", i, err)
		}
		out[ca.Name] = b
	}
	return out, nil
}

// caList is a flag that collects CA names, repeated or comma-separated.
type caList []string

func (l *caList) String() string { return strings.Join(*l, ",") }

func (l *caList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// reasonBody is the JSON reason of a revoke or replace request: a number
// stays a number, a name stays a name.
func reasonBody(reason string) any {
	if n, err := strconv.Atoi(reason); err == nil {
		return n
	}
	return reason
}

// dryRunReport is what POST /api/certificate?dryRun=true answers.
type dryRunReport struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Check   string `json:"check"`
		Subject string `json:"subject"`
		CA      string `json:"ca"`
		Status  string `json:"status"`
		Detail  string `json:"detail"`
	} `json:"checks"`
}

// dryRun posts an issue request as a dry run and prints each check; it
// fails when the checks did.
func dryRun(ctx context.Context, c *client, e env, body any, jsonOut bool) error {
	resp, err := c.do(ctx, http.MethodPost, "/api/certificate?dryRun=true", body, http.StatusOK)
	if err != nil {
		return err
	}
	var rep dryRunReport
	if err := decode(resp, &rep); err != nil {
		return err
	}
	if jsonOut {
		if err := writeJSONTo(e.stdout, rep); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CHECK\tSUBJECT\tCA\tRESULT\tDETAIL")
		for _, ch := range rep.Checks {
			ca := ch.CA
			if ca == "" {
				ca = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ch.Check, ch.Subject, ca, ch.Status, ch.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if rep.OK {
			fmt.Fprintln(e.stdout, "dry run: every check passed; no order was placed")
		} else {
			fmt.Fprintln(e.stdout, "dry run: some checks failed; no order was placed")
		}
	}
	if !rep.OK {
		return silentError{errors.New("the dry run found problems")}
	}
	return nil
}

// revokeMany revokes several certificates in one request.
func revokeMany(ctx context.Context, c *client, e env, names []string, reason string, jsonOut bool) error {
	body := map[string]any{"names": names}
	if reason != "" {
		body["reason"] = reasonBody(reason)
	}
	resp, err := c.do(ctx, http.MethodPost, "/api/certificates/revoke", body, http.StatusOK, http.StatusMultiStatus)
	if err != nil {
		return err
	}
	var ans struct {
		Revoked int `json:"revoked"`
		Failed  int `json:"failed"`
		Results []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"results"`
	}
	if err := decode(resp, &ans); err != nil {
		return err
	}
	if jsonOut {
		if err := writeJSONTo(e.stdout, ans); err != nil {
			return err
		}
	} else {
		for _, r := range ans.Results {
			if r.Status == "revoked" {
				fmt.Fprintf(e.stdout, "certificate %s is revoked\n", r.Name)
			} else {
				fmt.Fprintf(e.stdout, "certificate %s is not revoked: %s\n", r.Name, r.Error)
			}
		}
	}
	if ans.Failed > 0 {
		return silentError{fmt.Errorf("%d of %d certificates were not revoked", ans.Failed, ans.Failed+ans.Revoked)}
	}
	return nil
}

func cmdReplace(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("replace", "replace [flags] NAME", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	reason := fs.String("reason", "keyCompromise", "RFC 5280 reason the replaced version is revoked with")
	wait := fs.Bool("wait", false, "wait until the new version is issued and the old one revoked, showing each step")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{errors.New("replace needs exactly one certificate name")}
	}
	c, err := build()
	if err != nil {
		return err
	}
	body := map[string]any{"reason": reasonBody(*reason)}
	return startOperation(ctx, c, e, "/api/certificate/"+url.PathEscape(fs.Arg(0))+"/replace", body, *wait, *jsonOut)
}

// accountInfo is what GET /api/account answers.
type accountInfo struct {
	CA            string   `json:"ca"`
	AccountURI    string   `json:"accountUri"`
	DirectoryURL  string   `json:"directoryUrl"`
	CAAIdentities []string `json:"caaIdentities"`
}

func cmdAccount(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || (args[0] != "show" && args[0] != "rollover") {
		return &usageError{errors.New("account needs a subcommand: show [--ca NAME] or rollover --ca NAME")}
	}
	sub := args[0]
	fs := newFlagSet("account "+sub, "account "+sub+" [flags]", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	ca := fs.String("ca", "", "the CA's configured name (default: the first default CA)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &usageError{fmt.Errorf("account %s takes no arguments", sub)}
	}
	if sub == "rollover" && *ca == "" {
		return &usageError{errors.New("account rollover needs --ca NAME")}
	}
	c, err := build()
	if err != nil {
		return err
	}
	path := "/api/account"
	method := http.MethodGet
	if sub == "rollover" {
		path, method = "/api/account/rollover", http.MethodPost
	}
	if *ca != "" {
		path += "?ca=" + url.QueryEscape(*ca)
	}
	resp, err := c.do(ctx, method, path, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var info accountInfo
	if err := decode(resp, &info); err != nil {
		return err
	}
	if *jsonOut {
		return writeJSONTo(e.stdout, info)
	}
	if sub == "rollover" {
		fmt.Fprintf(e.stdout, "the key of the account at CA %s was replaced\n", info.CA)
	}
	fmt.Fprintf(e.stdout, "CA:             %s\ndirectory:      %s\naccount:        %s\nCAA identities: %s\n",
		info.CA, info.DirectoryURL, info.AccountURI, strings.Join(info.CAAIdentities, ", "))
	return nil
}
