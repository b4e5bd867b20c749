package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/app"
	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/config"
)

// listFlag is a flag that may be repeated, each value also a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// offlineFlags registers --offline and --config: work on the database named
// by the configuration instead of asking a server.
func offlineFlags(fs *flag.FlagSet, getenv func(string) string) (offline *bool, configPath *string) {
	offline = fs.Bool("offline", false, "work directly on the database of the configuration, without a server (to bootstrap the first admin key)")
	configPath = fs.String("config", getenv("CERTKEEPER_CONFIG"), "configuration file for --offline; also CERTKEEPER_CONFIG")
	return offline, configPath
}

// openOffline opens the configured database as the person at the console.
func openOffline(ctx context.Context, configPath string, e env) (context.Context, *app.Access, func() error, error) {
	cfg, err := config.Load(configPath, e.getenv)
	if err != nil {
		return nil, nil, nil, &usageError{fmt.Errorf("the configuration has problems:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	acc, closeDB, err := app.OpenAccess(ctx, cfg, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	return auth.NewContext(ctx, localPrincipal()), acc, closeDB, nil
}

// localPrincipal is the person at the console running an offline command:
// an admin, named after the operating-system user.
func localPrincipal() auth.Principal {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return auth.Principal{Kind: auth.KindLocal, Name: name, Roles: []auth.Role{auth.RoleAdmin}, RequireRoles: true}
}

// recordOffline puts an offline change in the audit log, as the console's
// user.
func recordOffline(ctx context.Context, acc *app.Access, action, detail string, status int) error {
	p, _ := auth.FromContext(ctx)
	return acc.RecordAudit(ctx, api.AuditEntry{At: time.Now().UTC(), Action: action, Address: "local",
		Actor:  api.AuditActor{Kind: p.Kind, ID: p.Actor(), Name: p.Name},
		Result: "succeeded", Status: status, Detail: detail})
}

func cmdAPIKey(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return &usageError{errors.New("apikey needs a subcommand: create, list or revoke")}
	}
	switch args[0] {
	case "create":
		return cmdAPIKeyCreate(ctx, args[1:], e)
	case "list":
		return cmdAPIKeyList(ctx, args[1:], e)
	case "revoke":
		return cmdAPIKeyRevoke(ctx, args[1:], e)
	}
	return &usageError{fmt.Errorf("apikey has no subcommand %q: use create, list or revoke", args[0])}
}

// createdKeyView is the answer of POST /api/keys.
type createdKeyView struct {
	api.Key
	Secret string `json:"key"`
}

func cmdAPIKeyCreate(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("apikey create", "apikey create --name NAME [--role ROLE]... [--zone ZONE]... [--expires 90d]", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	offline, configPath := offlineFlags(fs, e.getenv)
	name := fs.String("name", "", "the key's name (required)")
	var roles, zones listFlag
	fs.Var(&roles, "role", "a role the key holds; repeat or separate with commas ("+strings.Join(roleNames(), ", ")+")")
	fs.Var(&zones, "zone", "a zone the key is limited to, such as example.com or *.dev.example.com; repeat or separate with commas (default: every zone)")
	expires := fs.String("expires", "", "when the key stops working: a duration (90d, 720h) or a date (2027-01-31 or RFC 3339)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *name == "" {
		return &usageError{errors.New("apikey create needs --name and no arguments")}
	}
	var expiresAt time.Time
	if *expires != "" {
		t, err := parseExpiry(*expires, time.Now())
		if err != nil {
			return &usageError{err}
		}
		expiresAt = t
	}
	var created createdKeyView
	if *offline {
		nk, err := offlineNewKey(*name, roles, zones, expiresAt)
		if err != nil {
			return &usageError{err}
		}
		ctx, acc, closeDB, err := openOffline(ctx, *configPath, e)
		if err != nil {
			return err
		}
		defer closeDB()
		k, key, err := acc.CreateKey(ctx, nk)
		if errors.Is(err, api.ErrKeyExists) {
			return fmt.Errorf("an API key named %q exists already", nk.Name)
		}
		if err != nil {
			return err
		}
		if err := recordOffline(ctx, acc, api.ActionKeyCreate, fmt.Sprintf("key %q (%s), roles %v, zones %v", k.Name, k.ID, k.Roles, k.Zones),
			http.StatusCreated); err != nil {
			return err
		}
		created = createdKeyView{Key: k, Secret: key.Reveal()}
	} else {
		c, err := build()
		if err != nil {
			return err
		}
		body := map[string]any{"name": *name, "roles": nonNilList(roles), "zones": nonNilList(zones)}
		if !expiresAt.IsZero() {
			body["expiresAt"] = expiresAt.Format(time.RFC3339)
		}
		resp, err := c.do(ctx, http.MethodPost, "/api/keys", body, http.StatusCreated)
		if err != nil {
			return err
		}
		if err := decode(resp, &created); err != nil {
			return err
		}
	}
	if *jsonOut {
		return writeJSONTo(e.stdout, created)
	}
	fmt.Fprintf(e.stdout, "created API key %s (id %s), roles %s, zones %s%s\n", created.Name, created.ID,
		orAll(rolesText(created.Roles), "none"), orAll(strings.Join(created.Zones, ", "), "all"), expiryText(created.ExpiresAt))
	fmt.Fprintf(e.stdout, "the key is shown this once; keep it now:\n%s\n", created.Secret)
	return nil
}

// offlineNewKey checks what the API checks of a new key.
func offlineNewKey(name string, roles, zones []string, expiresAt time.Time) (api.NewKey, error) {
	nk := api.NewKey{Name: name, ExpiresAt: expiresAt}
	if !api.KeyNamePattern.MatchString(name) {
		return nk, fmt.Errorf("the name %q must match %s", name, api.KeyNamePattern)
	}
	for _, r := range roles {
		if !auth.ValidRole(r) {
			return nk, fmt.Errorf("%q is not a role; the roles are %s", r, strings.Join(roleNames(), ", "))
		}
		nk.Roles = append(nk.Roles, auth.Role(r))
	}
	for _, z := range zones {
		n, err := auth.NormalizeZone(z)
		if err != nil {
			return nk, err
		}
		nk.Zones = append(nk.Zones, n)
	}
	return nk, nil
}

// parseExpiry reads 90d, 720h, 2027-01-31 or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	var t time.Time
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			t = now.AddDate(0, 0, n)
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		t = now.Add(d)
	} else if day, err := time.Parse(time.DateOnly, s); err == nil {
		t = day
	} else if at, err := time.Parse(time.RFC3339, s); err == nil {
		t = at
	}
	if t.IsZero() {
		return t, fmt.Errorf("--expires %q is neither a duration (90d, 720h) nor a date (2027-01-31, RFC 3339)", s)
	}
	if !t.After(now) {
		return t, fmt.Errorf("--expires %q is not in the future", s)
	}
	return t.UTC().Truncate(time.Second), nil
}

func roleNames() []string {
	out := make([]string, len(auth.Roles))
	for i, r := range auth.Roles {
		out[i] = string(r)
	}
	return out
}

func rolesText(roles []auth.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

func orAll(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

func expiryText(t *time.Time) string {
	if t == nil {
		return ", never expires"
	}
	return ", expires " + t.UTC().Format(time.RFC3339)
}

func nonNilList(l listFlag) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func cmdAPIKeyList(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("apikey list", "apikey list [flags]", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	offline, configPath := offlineFlags(fs, e.getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &usageError{errors.New("apikey list takes no arguments")}
	}
	var keys []api.Key
	if *offline {
		ctx, acc, closeDB, err := openOffline(ctx, *configPath, e)
		if err != nil {
			return err
		}
		defer closeDB()
		if keys, err = acc.Keys(ctx); err != nil {
			return err
		}
	} else {
		c, err := build()
		if err != nil {
			return err
		}
		resp, err := c.do(ctx, http.MethodGet, "/api/keys", nil, http.StatusOK)
		if err != nil {
			return err
		}
		if err := decode(resp, &keys); err != nil {
			return err
		}
	}
	if *jsonOut {
		return writeJSONTo(e.stdout, keys)
	}
	if len(keys) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no API keys")
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLES\tZONES\tSOURCE\tEXPIRES\tLAST USED")
	now := time.Now()
	for _, k := range keys {
		expires, used := "never", "never"
		if k.ExpiresAt != nil {
			expires = humanDuration(k.ExpiresAt.Sub(now))
		}
		if k.LastUsedAt != nil {
			used = k.LastUsedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, orAll(rolesText(k.Roles), "-"),
			orAll(strings.Join(k.Zones, ","), "all"), k.Source, expires, used)
	}
	return tw.Flush()
}

func cmdAPIKeyRevoke(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("apikey revoke", "apikey revoke [flags] ID|NAME", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	offline, configPath := offlineFlags(fs, e.getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{errors.New("apikey revoke needs exactly one key id or name")}
	}
	ref := fs.Arg(0)
	if *offline {
		ctx, acc, closeDB, err := openOffline(ctx, *configPath, e)
		if err != nil {
			return err
		}
		defer closeDB()
		k, err := acc.RevokeKey(ctx, ref)
		switch {
		case errors.Is(err, api.ErrKeyNotFound):
			return fmt.Errorf("there is no API key %q", ref)
		case errors.Is(err, api.ErrKeyConfigured):
			return fmt.Errorf("the API key %q comes from the configuration file; remove it from auth.apiKeys there", ref)
		case err != nil:
			return err
		}
		if err := recordOffline(ctx, acc, api.ActionKeyRevoke, fmt.Sprintf("key %q (%s)", k.Name, k.ID), http.StatusNoContent); err != nil {
			return err
		}
		ref = k.ID
	} else {
		c, err := build()
		if err != nil {
			return err
		}
		id, err := keyID(ctx, c, ref)
		if err != nil {
			return err
		}
		resp, err := c.do(ctx, http.MethodDelete, "/api/keys/"+url.PathEscape(id), nil, http.StatusNoContent)
		if err != nil {
			return err
		}
		resp.Body.Close()
		ref = id
	}
	if *jsonOut {
		return writeJSONTo(e.stdout, map[string]any{"id": ref, "revoked": true})
	}
	fmt.Fprintf(e.stdout, "API key %s is revoked\n", ref)
	return nil
}

// keyID returns the id of the key whose id or name is ref.
func keyID(ctx context.Context, c *client, ref string) (string, error) {
	resp, err := c.do(ctx, http.MethodGet, "/api/keys", nil, http.StatusOK)
	if err != nil {
		return "", err
	}
	var keys []api.Key
	if err := decode(resp, &keys); err != nil {
		return "", err
	}
	if i := slices.IndexFunc(keys, func(k api.Key) bool { return k.ID == ref }); i >= 0 {
		return keys[i].ID, nil
	}
	if i := slices.IndexFunc(keys, func(k api.Key) bool { return k.Name == ref }); i >= 0 {
		return keys[i].ID, nil
	}
	return "", fmt.Errorf("there is no API key %q", ref)
}

func cmdAudit(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("audit", "audit [flags]", e)
	build, jsonOut := clientFlags(fs, e.getenv)
	offline, configPath := offlineFlags(fs, e.getenv)
	certName := fs.String("certificate", "", "only entries about this certificate")
	actor := fs.String("actor", "", "only entries by this key name, token subject or actor id")
	action := fs.String("action", "", "only this action, such as certificate.issue or operation.failed")
	limit := fs.Int("limit", 50, "how many entries, newest first (at most 1000)")
	before := fs.String("before", "", "the entries before this entry id (the next page)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &usageError{errors.New("audit takes no arguments")}
	}
	if *limit < 1 || *limit > 1000 {
		return &usageError{errors.New("--limit must be between 1 and 1000")}
	}
	var entries []api.AuditEntry
	if *offline {
		ctx, acc, closeDB, err := openOffline(ctx, *configPath, e)
		if err != nil {
			return err
		}
		defer closeDB()
		entries, err = acc.Audit(ctx, api.AuditQuery{Certificate: *certName, Actor: *actor, Action: *action, Before: *before, Limit: *limit})
		if err != nil {
			return err
		}
	} else {
		c, err := build()
		if err != nil {
			return err
		}
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		for k, v := range map[string]string{"certificate": *certName, "actor": *actor, "action": *action, "before": *before} {
			if v != "" {
				q.Set(k, v)
			}
		}
		resp, err := c.do(ctx, http.MethodGet, "/api/audit?"+q.Encode(), nil, http.StatusOK)
		if err != nil {
			return err
		}
		var page struct{ Entries []api.AuditEntry }
		if err := decode(resp, &page); err != nil {
			return err
		}
		entries = page.Entries
	}
	if *jsonOut {
		if entries == nil {
			entries = []api.AuditEntry{}
		}
		return writeJSONTo(e.stdout, entries)
	}
	return writeAudit(e.stdout, entries, *limit)
}

// writeAudit prints audit entries as a table, the detail cut to fit.
func writeAudit(w io.Writer, entries []api.AuditEntry, limit int) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "no audit entries")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tCERTIFICATE\tRESULT\tADDRESS\tDETAIL")
	for _, en := range entries {
		who := en.Actor.Name
		if en.Actor.Kind == auth.KindToken {
			who += " (" + en.Actor.Issuer + ")"
		}
		detail := en.Detail
		if len(detail) > 80 {
			detail = detail[:77] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", en.At.Local().Format(time.DateTime), orAll(who, "-"), en.Action,
			orAll(en.Certificate, "-"), en.Result, orAll(en.Address, "-"), detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(entries) == limit {
		fmt.Fprintf(w, "more: certkeeper audit --before %s\n", entries[len(entries)-1].ID)
	}
	return nil
}
