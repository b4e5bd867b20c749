package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Access is what the key-management and audit routes need (issue 7).
// Implementations are safe for concurrent use; the caller is in ctx
// (auth.FromContext).
type Access interface {
	// CreateKey stores a new managed key and returns it with the key itself,
	// which is not kept. A name in use is ErrKeyExists.
	CreateKey(ctx context.Context, k NewKey) (Key, secret.String, error)
	// Keys lists every key, configured and managed, never their hashes.
	Keys(ctx context.Context) ([]Key, error)
	// RevokeKey deletes the managed key with id at once and returns it;
	// ErrKeyNotFound, or ErrKeyConfigured for a key from the configuration.
	RevokeKey(ctx context.Context, id string) (Key, error)
	// Audit returns the entries q selects, newest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// RecordAudit appends e to the audit log.
	RecordAudit(ctx context.Context, e AuditEntry) error
}

// Errors of Access.
var (
	ErrKeyExists     = errors.New("an API key with this name exists")
	ErrKeyNotFound   = errors.New("API key not found")
	ErrKeyConfigured = errors.New("the API key is configured in the file")
)

// NewKey is a key to create.
type NewKey struct {
	Name  string
	Roles []auth.Role
	// Zones are normalised zone patterns; empty is every zone.
	Zones []string
	// ExpiresAt is zero for a key that does not expire.
	ExpiresAt time.Time
}

// Key is an API key as the API shows it: never the key or its hash.
type Key struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Roles      []auth.Role `json:"roles"`
	Zones      []string    `json:"zones"`
	Source     string      `json:"source"`
	CreatedBy  string      `json:"createdBy"`
	CreatedAt  time.Time   `json:"createdAt"`
	ExpiresAt  *time.Time  `json:"expiresAt"`
	LastUsedAt *time.Time  `json:"lastUsedAt"`
}

// AuditActor is who an audit entry is about.
type AuditActor struct {
	// Kind is "key", "oidc", "local" or "system".
	Kind string `json:"kind"`
	// ID is the stable actor id (auth.Principal.Actor).
	ID string `json:"id"`
	// Name is the key name, the token subject or the user.
	Name   string `json:"name"`
	Issuer string `json:"issuer,omitempty"`
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID          string     `json:"id"`
	At          time.Time  `json:"at"`
	Actor       AuditActor `json:"actor"`
	Action      string     `json:"action"`
	Certificate string     `json:"certificateName,omitempty"`
	Operation   string     `json:"operationId,omitempty"`
	Address     string     `json:"address,omitempty"`
	Result      string     `json:"result"`
	Status      int        `json:"status,omitempty"`
	Detail      string     `json:"detail,omitempty"`
	TraceID     string     `json:"traceId,omitempty"`
}

// AuditQuery selects audit entries; empty fields select everything.
type AuditQuery struct {
	Certificate string
	// Actor matches the actor's name or actor id.
	Actor  string
	Action string
	// Before is the id of the last entry of the previous page.
	Before string
	Limit  int
}

// Audit actions recorded by the API. Operation outcomes are recorded by the
// service as "operation.succeeded" and "operation.failed".
const (
	ActionIssue           = "certificate.issue"
	ActionRenew           = "certificate.renew"
	ActionRevoke          = "certificate.revoke"
	ActionReplace         = "certificate.replace"
	ActionAccountRollover = "account.rollover"
	ActionKeyCreate       = "apikey.create"
	ActionKeyRevoke       = "apikey.revoke"
)

// KeyNamePattern is what a key name may be.
var KeyNamePattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`)

// createdKey is the answer to POST /api/keys: the key, once.
type createdKey struct {
	Key
	Secret string `json:"key"`
}

// createKey answers POST /api/keys: 201 with the key itself, shown this
// once, and Location /api/keys/{id}. The body is {"name": "ci", "roles":
// [...], "zones": [...], "expiresAt": "2027-01-01T00:00:00Z"}; only name is
// required.
func (s *server) createKey(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	nk, errs := parseNewKey(body, time.Now())
	if errs != nil {
		return validationError(errs)
	}
	noteFrom(r.Context()).detail = fmt.Sprintf("key %q", nk.Name)
	k, key, err := s.access.CreateKey(r.Context(), nk)
	if errors.Is(err, ErrKeyExists) {
		return &httpError{status: http.StatusConflict, detail: fmt.Sprintf("An API key named '%s' exists already.", nk.Name)}
	}
	if err != nil {
		return fmt.Errorf("creating API key %q: %w", nk.Name, err)
	}
	noteFrom(r.Context()).detail = fmt.Sprintf("key %q (%s), roles %v, zones %v", k.Name, k.ID, k.Roles, k.Zones)
	w.Header().Set("Location", s.baseURL(r)+"/api/keys/"+k.ID)
	writeJSON(w, "application/json", http.StatusCreated, createdKey{Key: k, Secret: key.Reveal()})
	return nil
}

// parseNewKey validates a POST /api/keys body.
func parseNewKey(body []byte, now time.Time) (NewKey, fieldErrors) {
	errs := fieldErrors{}
	obj, msg := jsonObject(body)
	if msg != "" {
		errs.add(bodyField, "%s", msg)
		return NewKey{}, errs
	}
	var nk NewKey
	name, ok := stringValue(obj["name"])
	switch {
	case !ok:
		errs.add("Name", "The Name must be a string.")
	case name == "":
		errs.add("Name", "The Name is required.")
	case !KeyNamePattern.MatchString(name):
		errs.add("Name", "The field Name must match the regular expression '%s'.", KeyNamePattern)
	}
	nk.Name = name
	roles, ok := stringList(obj["roles"])
	if !ok {
		errs.add("Roles", "The Roles must be an array of role names.")
	}
	for _, r := range roles {
		if !auth.ValidRole(r) {
			errs.add("Roles", "'%s' is not a role; the roles are %s.", r, roleNames())
			continue
		}
		if !slices.Contains(nk.Roles, auth.Role(r)) {
			nk.Roles = append(nk.Roles, auth.Role(r))
		}
	}
	zones, ok := stringList(obj["zones"])
	if !ok {
		errs.add("Zones", "The Zones must be an array of zone names.")
	}
	for _, z := range zones {
		norm, err := auth.NormalizeZone(z)
		if err != nil {
			errs.add("Zones", "'%s' is not a zone: %s.", z, nameRule(err))
			continue
		}
		if !slices.Contains(nk.Zones, norm) {
			nk.Zones = append(nk.Zones, norm)
		}
	}
	if raw := obj["expiresat"]; !absent(raw) {
		s, ok := stringValue(raw)
		t, err := time.Parse(time.RFC3339, s)
		switch {
		case !ok || err != nil:
			errs.add("ExpiresAt", "The ExpiresAt must be an RFC 3339 time, such as 2027-01-01T00:00:00Z.")
		case !t.After(now):
			errs.add("ExpiresAt", "The ExpiresAt must be in the future.")
		default:
			nk.ExpiresAt = t.UTC()
		}
	}
	if len(errs) > 0 {
		return NewKey{}, errs
	}
	return nk, nil
}

// stringList reads an optional JSON array of strings.
func stringList(raw json.RawMessage) ([]string, bool) {
	if absent(raw) {
		return nil, true
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false
	}
	return out, true
}

func roleNames() string {
	names := make([]string, len(auth.Roles))
	for i, r := range auth.Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// listKeys answers GET /api/keys.
func (s *server) listKeys(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	keys, err := s.access.Keys(r.Context())
	if err != nil {
		return fmt.Errorf("listing API keys: %w", err)
	}
	if keys == nil {
		keys = []Key{}
	}
	writeJSON(w, "application/json", http.StatusOK, keys)
	return nil
}

// revokeKey answers DELETE /api/keys/{id}: 204 once the key is gone; the
// next request that presents it, to any replica, is unauthenticated.
func (s *server) revokeKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	id := r.PathValue("id")
	note := noteFrom(r.Context())
	note.detail = fmt.Sprintf("key %s", id)
	k, err := s.access.RevokeKey(r.Context(), id)
	switch {
	case errors.Is(err, ErrKeyNotFound):
		return &httpError{status: http.StatusNotFound, detail: fmt.Sprintf("The API key '%s' does not exist.", id)}
	case errors.Is(err, ErrKeyConfigured):
		return &httpError{status: http.StatusConflict,
			detail: fmt.Sprintf("The API key '%s' comes from the configuration file; remove it from auth.apiKeys there.", id)}
	case err != nil:
		return fmt.Errorf("revoking API key %s: %w", id, err)
	}
	note.detail = fmt.Sprintf("key %q (%s)", k.Name, k.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// maxAuditPage is the largest page of GET /api/audit.
const maxAuditPage = 1000

// auditPage is the answer to GET /api/audit.
type auditPage struct {
	Entries []AuditEntry `json:"entries"`
	// Next is the before value of the next page; empty on the last one.
	Next string `json:"next,omitempty"`
}

// audit answers GET /api/audit?certificate=&actor=&action=&before=&limit=
// with the newest entries first, limit (default 100, at most 1000) a page.
// There is no route that changes the log.
func (s *server) audit(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	q := r.URL.Query()
	query := AuditQuery{Certificate: q.Get("certificate"), Actor: q.Get("actor"), Action: q.Get("action"),
		Before: q.Get("before"), Limit: 100}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditPage {
			return validationError(fieldErrors{"Limit": {fmt.Sprintf("The Limit must be between 1 and %d.", maxAuditPage)}})
		}
		query.Limit = n
	}
	entries, err := s.access.Audit(r.Context(), query)
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	page := auditPage{Entries: entries}
	if page.Entries == nil {
		page.Entries = []AuditEntry{}
	}
	if len(entries) == query.Limit {
		page.Next = entries[len(entries)-1].ID
		next := *r.URL
		v := next.Query()
		v.Set("before", page.Next)
		next.RawQuery = v.Encode()
		w.Header().Set("Link", "<"+s.baseURL(r)+next.RequestURI()+`>; rel="next"`)
	}
	writeJSON(w, "application/json", http.StatusOK, page)
	return nil
}
