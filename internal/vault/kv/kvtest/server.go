// Package kvtest holds an in-memory HTTP server that answers the parts of
// the HashiCorp Vault / OpenBao API the kv destination uses, as the
// servers document them (https://developer.hashicorp.com/vault/api-docs):
// KV version 2 read (with ?version=), write with options.cas, and metadata,
// and the AppRole and Kubernetes logins. It checks every request — method,
// path, token, namespace, the X-Vault-Request header, the JSON body — and
// answers with Vault's shapes, errors included. It is for tests only.
package kvtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake Vault. Configure it before the first request; its
// methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	// Mount is the KV v2 mount (default "secret").
	Mount string
	// Namespace, when set, must arrive in X-Vault-Namespace.
	Namespace string
	// RoleID/SecretID are the AppRole credentials accepted; Role/JWT the
	// Kubernetes ones.
	RoleID, SecretID string
	Role, JWT        string
	// LeaseSeconds is the lease of tokens issued by logins (default 3600).
	LeaseSeconds int
	// CASRequired refuses writes without options.cas.
	CASRequired bool
	// BeforeWrite, when set, runs before a write is applied, with the
	// secret's path; tests use it to make another writer win a race.
	BeforeWrite func(path string)

	t       testing.TB
	mu      sync.Mutex
	tokens  map[string]bool
	secrets map[string]*secret
	logins  int
	writes  int
	errs    []string
}

type secret struct {
	created  time.Time
	updated  time.Time
	versions []version // index i holds version i+1
}

type version struct {
	data    map[string]any
	created time.Time
	deleted time.Time
}

// Start starts a fake Vault that accepts rootToken; it stops when the test
// ends, and fails the test if a request broke the documented contract.
func Start(t testing.TB, rootToken string) *Server {
	s := &Server{Mount: "secret", LeaseSeconds: 3600, t: t, tokens: map[string]bool{rootToken: true},
		secrets: map[string]*secret{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.errs {
			t.Errorf("fake Vault: %s", e)
		}
	})
	return s
}

// RevokeTokens forgets every token issued by a login, as when they expire.
func (s *Server) RevokeTokens(keep string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok := range s.tokens {
		if tok != keep {
			delete(s.tokens, tok)
		}
	}
}

// Logins and Writes count successful logins and applied writes.
func (s *Server) Logins() int { s.mu.Lock(); defer s.mu.Unlock(); return s.logins }

// Writes counts applied writes.
func (s *Server) Writes() int { s.mu.Lock(); defer s.mu.Unlock(); return s.writes }

// Data returns the newest version's data of the secret at path (inside the
// mount) and its version number, or nil and 0.
func (s *Server) Data(path string) (map[string]any, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[path]
	if sec == nil || len(sec.versions) == 0 {
		return nil, 0
	}
	return sec.versions[len(sec.versions)-1].data, len(sec.versions)
}

// Write stores data as a new version of path, as another writer would.
func (s *Server) Write(path string, data map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apply(path, data)
}

// DeleteLatest soft-deletes the newest version of path.
func (s *Server) DeleteLatest(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[path]; sec != nil && len(sec.versions) > 0 {
		sec.versions[len(sec.versions)-1].deleted = time.Now().UTC()
	}
}

func (s *Server) apply(path string, data map[string]any) int {
	now := time.Now().UTC()
	sec := s.secrets[path]
	if sec == nil {
		sec = &secret{created: now}
		s.secrets[path] = sec
	}
	sec.updated = now
	sec.versions = append(sec.versions, version{data: data, created: now})
	s.writes++
	return len(sec.versions)
}

func (s *Server) failf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// vaultErrors answers as Vault answers an error: {"errors": [...]}.
func vaultErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": msgs})
}

// envelope is Vault's response around data or auth.
func envelope(data, auth any) map[string]any {
	return map[string]any{
		"request_id": newID(), "lease_id": "", "renewable": false, "lease_duration": 0,
		"data": data, "wrap_info": nil, "warnings": nil, "auth": auth, "mount_type": "kv",
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Request") != "true" {
		s.failf("%s %s without X-Vault-Request: true", r.Method, r.URL.Path)
	}
	if s.Namespace != "" && r.Header.Get("X-Vault-Namespace") != s.Namespace {
		s.failf("%s %s with namespace %q, want %q", r.Method, r.URL.Path, r.Header.Get("X-Vault-Namespace"), s.Namespace)
		vaultErrors(w, http.StatusForbidden, "permission denied")
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	switch {
	case strings.HasPrefix(p, "auth/") && strings.HasSuffix(p, "/login"):
		s.login(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "auth/"), "/login"))
		return
	}
	s.mu.Lock()
	ok := s.tokens[r.Header.Get("X-Vault-Token")]
	s.mu.Unlock()
	if !ok {
		vaultErrors(w, http.StatusForbidden, "permission denied")
		return
	}
	mount := s.Mount + "/"
	switch {
	case strings.HasPrefix(p, mount+"data/"):
		path := strings.TrimPrefix(p, mount+"data/")
		switch r.Method {
		case http.MethodGet:
			s.read(w, r, path)
		case http.MethodPost, http.MethodPut:
			s.write(w, r, path)
		default:
			s.failf("%s %s: method not used by the destination", r.Method, r.URL.Path)
			vaultErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
		}
	case strings.HasPrefix(p, mount+"metadata/") && r.Method == http.MethodGet:
		s.metadata(w, strings.TrimPrefix(p, mount+"metadata/"))
	default:
		s.failf("%s %s: not a KV v2 endpoint of mount %q", r.Method, r.URL.Path, s.Mount)
		vaultErrors(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, method string) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		s.failf("%s %s: a login is a POST", r.Method, r.URL.Path)
	}
	if r.Header.Get("X-Vault-Token") != "" {
		s.failf("login to %s carried a token", method)
	}
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		s.failf("login to %s: body is not a JSON object of strings: %v", method, err)
		vaultErrors(w, http.StatusBadRequest, "failed to parse JSON input")
		return
	}
	var role string
	switch method {
	case "approle":
		if body["role_id"] == "" {
			vaultErrors(w, http.StatusBadRequest, "missing role_id")
			return
		}
		if body["role_id"] != s.RoleID || body["secret_id"] != s.SecretID {
			vaultErrors(w, http.StatusBadRequest, "invalid role or secret ID")
			return
		}
		role = "certkeeper"
	case "kubernetes":
		if body["role"] == "" || body["jwt"] == "" {
			vaultErrors(w, http.StatusBadRequest, "missing role or jwt")
			return
		}
		if body["role"] != s.Role || body["jwt"] != s.JWT {
			vaultErrors(w, http.StatusForbidden, "permission denied")
			return
		}
		role = s.Role
	default:
		vaultErrors(w, http.StatusBadRequest, fmt.Sprintf("no handler for route \"auth/%s/login\"", method))
		return
	}
	tok := "hvs." + strings.ReplaceAll(newID(), "-", "")
	s.mu.Lock()
	s.tokens[tok] = true
	s.logins++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, envelope(nil, map[string]any{
		"client_token": tok, "accessor": newID(), "policies": []string{"default", "certkeeper"},
		"token_policies": []string{"default", "certkeeper"}, "metadata": map[string]string{"role_name": role},
		"lease_duration": s.LeaseSeconds, "renewable": true, "entity_id": newID(), "token_type": "service",
		"orphan": true, "mfa_requirement": nil, "num_uses": 0,
	}))
}

func versionMetadata(v version, n int) map[string]any {
	deletion := ""
	if !v.deleted.IsZero() {
		deletion = v.deleted.Format(time.RFC3339Nano)
	}
	return map[string]any{"created_time": v.created.Format(time.RFC3339Nano), "custom_metadata": nil,
		"deletion_time": deletion, "destroyed": false, "version": n}
}

// read is GET /v1/:mount/data/:path(?version=N).
func (s *Server) read(w http.ResponseWriter, r *http.Request, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[path]
	if sec == nil || len(sec.versions) == 0 {
		vaultErrors(w, http.StatusNotFound)
		return
	}
	n := len(sec.versions)
	if q := r.URL.Query().Get("version"); q != "" && q != "0" {
		var err error
		if n, err = strconv.Atoi(q); err != nil || n < 1 {
			vaultErrors(w, http.StatusBadRequest, "invalid version")
			return
		}
		if n > len(sec.versions) {
			vaultErrors(w, http.StatusNotFound)
			return
		}
	}
	v := sec.versions[n-1]
	if !v.deleted.IsZero() {
		// A deleted version answers 404 with its metadata and no data.
		writeJSON(w, http.StatusNotFound, envelope(map[string]any{"data": nil, "metadata": versionMetadata(v, n)}, nil))
		return
	}
	writeJSON(w, http.StatusOK, envelope(map[string]any{"data": v.data, "metadata": versionMetadata(v, n)}, nil))
}

// write is POST /v1/:mount/data/:path with {"options": {"cas": N}, "data": {...}}.
func (s *Server) write(w http.ResponseWriter, r *http.Request, path string) {
	var body struct {
		Options map[string]any `json:"options"`
		Data    map[string]any `json:"data"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		s.failf("write %s: body %v", path, err)
		vaultErrors(w, http.StatusBadRequest, "failed to parse JSON input")
		return
	}
	if body.Data == nil {
		vaultErrors(w, http.StatusBadRequest, "no data provided")
		return
	}
	for k, v := range body.Data {
		if _, ok := v.(string); !ok {
			s.failf("write %s: field %s is %T, want a string", path, k, v)
		}
	}
	if s.BeforeWrite != nil {
		s.BeforeWrite(path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	current := 0
	if sec := s.secrets[path]; sec != nil {
		current = len(sec.versions)
	}
	raw, hasCAS := body.Options["cas"]
	if !hasCAS && s.CASRequired {
		vaultErrors(w, http.StatusBadRequest, "check-and-set parameter required for this call")
		return
	}
	if hasCAS {
		cas, ok := raw.(float64)
		if !ok || cas != float64(int(cas)) || cas < 0 {
			vaultErrors(w, http.StatusBadRequest, "error parsing check-and-set parameter")
			return
		}
		if int(cas) != current {
			vaultErrors(w, http.StatusBadRequest, "check-and-set parameter did not match the current version")
			return
		}
	}
	n := s.apply(path, body.Data)
	writeJSON(w, http.StatusOK, envelope(versionMetadata(s.secrets[path].versions[n-1], n), nil))
}

// metadata is GET /v1/:mount/metadata/:path.
func (s *Server) metadata(w http.ResponseWriter, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[path]
	if sec == nil {
		vaultErrors(w, http.StatusNotFound)
		return
	}
	versions := map[string]any{}
	for i, v := range sec.versions {
		m := versionMetadata(v, i+1)
		delete(m, "version")
		delete(m, "custom_metadata")
		versions[strconv.Itoa(i+1)] = m
	}
	writeJSON(w, http.StatusOK, envelope(map[string]any{
		"cas_required": s.CASRequired, "created_time": sec.created.Format(time.RFC3339Nano),
		"current_version": len(sec.versions), "custom_metadata": nil, "delete_version_after": "0s",
		"max_versions": 0, "oldest_version": 1, "updated_time": sec.updated.Format(time.RFC3339Nano),
		"versions": versions,
	}, nil))
}
