package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/auth"
)

// memKeys is a KeyStore in memory.
type memKeys struct {
	mu      sync.Mutex
	keys    map[[32]byte]auth.StoredKey
	touched []string
	err     error
}

func (m *memKeys) KeyByHash(_ context.Context, hash [32]byte) (auth.StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return auth.StoredKey{}, m.err
	}
	k, ok := m.keys[hash]
	if !ok {
		return auth.StoredKey{}, auth.ErrKeyNotFound
	}
	return k, nil
}

func (m *memKeys) TouchKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.touched = append(m.touched, id)
	for h, k := range m.keys {
		if k.ID == id {
			k.LastUsedAt = at
			m.keys[h] = k
		}
	}
	return nil
}

func TestAuthenticatorAPIKeys(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const (
		ciKey      = "ck_ci-key-0123456789abcdefghijklmnopqrstuvw"
		teamKey    = "team-key-from-config-0123"
		expiredKey = "ck_expired-0123456789abcdefghijklmnopqrstuv"
	)
	store := &memKeys{keys: map[[32]byte]auth.StoredKey{
		auth.HashKey(ciKey):      {ID: "k1", Name: "ci", Roles: []auth.Role{auth.RoleIssue}},
		auth.HashKey(teamKey):    {ID: "k2", Name: "team", Roles: []auth.Role{auth.RoleIssue}, Zones: []string{"example.com"}, LastUsedAt: now.Add(-time.Second)},
		auth.HashKey(expiredKey): {ID: "k3", Name: "old", ExpiresAt: now},
	}}
	a := auth.NewAuthenticator(auth.Options{Keys: store, RequireRoles: true, Now: func() time.Time { return now }})
	ci := auth.Principal{Kind: auth.KindAPIKey, ID: "k1", Name: "ci", Roles: []auth.Role{auth.RoleIssue}, RequireRoles: true}
	team := auth.Principal{Kind: auth.KindAPIKey, ID: "k2", Name: "team", RequireRoles: true,
		Grants: []auth.Grant{{Roles: []auth.Role{auth.RoleIssue}, Zones: []string{"example.com"}}}}
	tests := []struct {
		name   string
		header map[string]string
		query  string
		want   auth.Principal
		reason string
	}{
		{name: "functions key", header: map[string]string{"X-Functions-Key": ciKey}, want: ci},
		{name: "code", query: "?code=" + teamKey, want: team},
		{name: "api key header", header: map[string]string{"X-Api-Key": ciKey}, want: ci},
		{name: "bearer api key", header: map[string]string{"Authorization": "Bearer " + ciKey}, want: ci},
		{name: "bearer scheme in lower case", header: map[string]string{"Authorization": "bearer " + ciKey}, want: ci},
		{name: "header wins over bearer", header: map[string]string{"X-Api-Key": teamKey, "Authorization": "Bearer " + ciKey}, want: team},
		{name: "unknown key", header: map[string]string{"X-Api-Key": "ck_nobody"}, reason: auth.ReasonUnknownKey},
		{name: "expired key", header: map[string]string{"X-Api-Key": expiredKey}, reason: auth.ReasonExpiredKey},
		{name: "nothing", reason: auth.ReasonMissing},
		{name: "basic auth", header: map[string]string{"Authorization": "Basic " + ciKey}, reason: auth.ReasonMissing},
		{name: "bearer token, no issuer configured", header: map[string]string{"Authorization": "Bearer a.b.c"}, reason: auth.ReasonMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/api/certificates"+tt.query, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			got, err := a.Authenticate(r)
			if tt.reason != "" {
				f, ok := errors.AsType[*auth.Failure](err)
				if !ok || f.Reason != tt.reason || !errors.Is(err, auth.ErrUnauthenticated) {
					t.Fatalf("Authenticate() error = %v; want reason %s", err, tt.reason)
				}
				for _, secret := range []string{ciKey, teamKey, expiredKey} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error repeats a key: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("principal mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("expired key is named", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Api-Key", expiredKey)
		_, err := a.Authenticate(r)
		if f, _ := errors.AsType[*auth.Failure](err); f == nil || f.KeyName != "old" {
			t.Errorf("failure = %v; want it to name the key", err)
		}
	})
}

// TestTouchThrottled records a key's use at most once a minute.
func TestTouchThrottled(t *testing.T) {
	t.Parallel()
	const key = "ck_touch-0123456789abcdefghijklmnopqrstuvwxyz"
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	store := &memKeys{keys: map[[32]byte]auth.StoredKey{auth.HashKey(key): {ID: "k", Name: "k"}}}
	clock := now
	a := auth.NewAuthenticator(auth.Options{Keys: store, Now: func() time.Time { return clock }})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Api-Key", key)
	for _, step := range []time.Duration{0, time.Second, 30 * time.Second, time.Minute, time.Second} {
		clock = clock.Add(step)
		if _, err := a.Authenticate(r); err != nil {
			t.Fatal(err)
		}
	}
	// Uses at 0 s (first), 1 s, 31 s, 91 s (a minute after the first), 92 s.
	if len(store.touched) != 2 {
		t.Errorf("TouchKey called %d times; want 2", len(store.touched))
	}
}

// TestKeyStoreError is not "unauthenticated": the key could not be checked.
func TestKeyStoreError(t *testing.T) {
	t.Parallel()
	a := auth.NewAuthenticator(auth.Options{Keys: &memKeys{err: errors.New("database down")}})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Api-Key", "ck_x")
	if _, err := a.Authenticate(r); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Authenticate() error = %v; want a lookup error", err)
	}
}

func TestCountersSamples(t *testing.T) {
	t.Parallel()
	var c auth.Counters
	c.AuthFailed(auth.ReasonUnknownKey)
	c.AuthFailed(auth.ReasonUnknownKey)
	c.AuthSucceeded(auth.MethodToken)
	c.Forbidden()
	c.RateLimited()
	c.RateLimited()
	got := map[string]uint64{}
	for _, s := range c.Samples() {
		got[s.Name+labelString(s.Labels)] = s.Value
	}
	want := map[string]uint64{
		"certkeeper_auth_successes_total{method=api_key}": 0,
		"certkeeper_auth_successes_total{method=oidc}":    1,
		"certkeeper_requests_forbidden_total":             1,
		"certkeeper_requests_rate_limited_total":          2,
	}
	for _, r := range auth.FailureReasons {
		want["certkeeper_auth_failures_total{reason="+r+"}"] = 0
	}
	want["certkeeper_auth_failures_total{reason=unknown_key}"] = 2
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("samples mismatch (-want +got):\n%s", diff)
	}
	var nilCounters *auth.Counters
	nilCounters.AuthFailed("x")
	if len(nilCounters.Samples()) != len(c.Samples()) {
		t.Errorf("a nil Counters has other samples")
	}
}

func labelString(l map[string]string) string {
	for k, v := range l {
		return "{" + k + "=" + v + "}"
	}
	return ""
}
