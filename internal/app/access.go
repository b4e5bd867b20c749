package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/certkeeper/certkeeper/internal/api"
	"github.com/certkeeper/certkeeper/internal/auth"
	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/store"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// Access holds API keys and the audit log in the database: the API's key
// and audit routes, the key store the authenticator looks keys up in on
// every request, and the observer that records operation outcomes. The CLI
// uses it directly against the database to manage keys while no server
// runs. Safe for concurrent use.
type Access struct {
	store  *store.Store
	logger *slog.Logger
}

var (
	_ api.Access    = (*Access)(nil)
	_ auth.KeyStore = (*Access)(nil)
)

// NewAccess returns an Access over st.
func NewAccess(st *store.Store, logger *slog.Logger) *Access {
	return &Access{store: st, logger: logger.With("component", "access")}
}

// OpenAccess opens (and migrates) the configured database for the CLI's
// offline key and audit commands, beside a running server if there is one
// (store.OpenShared). close closes the database.
func OpenAccess(ctx context.Context, cfg *config.Config, logger *slog.Logger) (a *Access, close func() error, err error) {
	dsn := cfg.Database.Reveal()
	if dsn == "" {
		dsn = cfg.SQLitePath()
	}
	st, err := store.OpenShared(ctx, dsn, logger)
	if err != nil {
		return nil, nil, err
	}
	return NewAccess(st, logger), st.Close, nil
}

// KeyByHash implements auth.KeyStore: one indexed read per request, so that
// a key created or revoked by any process sharing the database counts at
// once.
func (a *Access) KeyByHash(ctx context.Context, hash [32]byte) (auth.StoredKey, error) {
	k, err := a.store.APIKeyByHash(ctx, hex.EncodeToString(hash[:]))
	if errors.Is(err, store.ErrNotFound) {
		return auth.StoredKey{}, auth.ErrKeyNotFound
	}
	if err != nil {
		return auth.StoredKey{}, err
	}
	return auth.StoredKey{ID: k.ID, Name: k.Name, Roles: roles(k.Roles), Zones: k.Zones,
		ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt}, nil
}

// TouchKey implements auth.KeyStore.
func (a *Access) TouchKey(ctx context.Context, id string, at time.Time) error {
	return a.store.TouchAPIKey(ctx, id, at)
}

func roles(names []string) []auth.Role {
	out := make([]auth.Role, 0, len(names))
	for _, n := range names {
		out = append(out, auth.Role(n))
	}
	return out
}

func keyView(k store.APIKey) api.Key {
	v := api.Key{ID: k.ID, Name: k.Name, Roles: roles(k.Roles), Zones: k.Zones, Source: k.Source,
		CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt}
	if v.Zones == nil {
		v.Zones = []string{}
	}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt
		v.ExpiresAt = &t
	}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt
		v.LastUsedAt = &t
	}
	return v
}

// CreateKey implements api.Access: a new ck_ key, kept only as its hash,
// made by the caller in ctx.
func (a *Access) CreateKey(ctx context.Context, nk api.NewKey) (api.Key, secret.String, error) {
	key, err := auth.GenerateKey()
	if err != nil {
		return api.Key{}, "", err
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return api.Key{}, "", fmt.Errorf("generating key id: %w", err)
	}
	hash := auth.HashKey(key.Reveal())
	k := store.APIKey{ID: "k" + hex.EncodeToString(id), Name: nk.Name, Hash: hex.EncodeToString(hash[:]),
		Zones: nk.Zones, Source: store.KeySourceManaged, CreatedAt: time.Now().UTC(), ExpiresAt: nk.ExpiresAt}
	for _, r := range nk.Roles {
		k.Roles = append(k.Roles, string(r))
	}
	if p, ok := auth.FromContext(ctx); ok {
		k.CreatedBy = p.Actor()
	}
	if err := a.store.InsertAPIKey(ctx, k); err != nil {
		if errors.Is(err, store.ErrExists) {
			return api.Key{}, "", api.ErrKeyExists
		}
		return api.Key{}, "", err
	}
	a.logger.InfoContext(ctx, "api key created", "key_name", k.Name, "key_id", k.ID, "roles", k.Roles,
		"zones", k.Zones, "created_by", k.CreatedBy)
	k.CreatedAt = k.CreatedAt.Truncate(time.Microsecond)
	return keyView(k), key, nil
}

// Keys implements api.Access.
func (a *Access) Keys(ctx context.Context) ([]api.Key, error) {
	rows, err := a.store.APIKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Key, 0, len(rows))
	for _, k := range rows {
		out = append(out, keyView(k))
	}
	return out, nil
}

// RevokeKey implements api.Access; ref is the key's id or, failing that,
// its name.
func (a *Access) RevokeKey(ctx context.Context, ref string) (api.Key, error) {
	k, err := a.store.APIKey(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return api.Key{}, api.ErrKeyNotFound
	}
	if err != nil {
		return api.Key{}, err
	}
	if k.Source == store.KeySourceConfig {
		return api.Key{}, api.ErrKeyConfigured
	}
	if err := a.store.DeleteAPIKey(ctx, k.ID); errors.Is(err, store.ErrNotFound) {
		return api.Key{}, api.ErrKeyNotFound
	} else if err != nil {
		return api.Key{}, err
	}
	a.logger.InfoContext(ctx, "api key revoked", "key_name", k.Name, "key_id", k.ID)
	return keyView(k), nil
}

// Audit implements api.Access.
func (a *Access) Audit(ctx context.Context, q api.AuditQuery) ([]api.AuditEntry, error) {
	rows, err := a.store.Audit(ctx, store.AuditFilter{Certificate: q.Certificate, Actor: q.Actor, Action: q.Action,
		Before: q.Before, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]api.AuditEntry, 0, len(rows))
	for _, e := range rows {
		out = append(out, api.AuditEntry{ID: e.ID, At: e.At,
			Actor:  api.AuditActor{Kind: e.ActorKind, ID: e.ActorID, Name: e.Actor, Issuer: e.ActorIssuer},
			Action: e.Action, Certificate: e.Certificate, Operation: e.Operation, Address: e.Address,
			Result: e.Result, Status: e.Status, Detail: e.Detail, TraceID: e.TraceID})
	}
	return out, nil
}

// RecordAudit implements api.Access.
func (a *Access) RecordAudit(ctx context.Context, e api.AuditEntry) error {
	_, err := a.store.AppendAudit(ctx, store.AuditEntry{At: e.At, ActorKind: e.Actor.Kind, ActorID: e.Actor.ID,
		Actor: e.Actor.Name, ActorIssuer: e.Actor.Issuer, Action: e.Action, Certificate: e.Certificate,
		Operation: e.Operation, Address: e.Address, Result: e.Result, Status: e.Status, Detail: e.Detail,
		TraceID: e.TraceID})
	return err
}

// OperationDone records the end of an operation (a job hook): its outcome is
// in the audit log, under the caller who asked for it (or "system").
func (a *Access) OperationDone(ctx context.Context, op operation.Operation) {
	actor := api.AuditActor{Kind: auth.KindSystem, ID: auth.KindSystem, Name: "certkeeper"}
	if op.CreatedBy != "" {
		kind, issuer, _ := auth.ParseActor(op.CreatedBy)
		actor = api.AuditActor{Kind: kind, ID: op.CreatedBy, Name: op.CreatedByName, Issuer: issuer}
	}
	e := api.AuditEntry{At: time.Now().UTC(), Actor: actor, Action: "operation." + string(op.Status),
		Certificate: op.CertificateName, Operation: op.ID, Result: string(op.Status), Detail: string(op.Kind)}
	if op.Status == operation.StatusFailed {
		e.Detail = fmt.Sprintf("%s failed at %s: %s", op.Kind, op.FailedStep, op.Error)
	} else if op.VersionID != "" {
		e.Detail = fmt.Sprintf("%s stored version %s", op.Kind, op.VersionID)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.RecordAudit(ctx, e); err != nil {
		a.logger.ErrorContext(ctx, "recording an operation outcome in the audit log", "operation_id", op.ID, "error", err)
	}
}

// authenticator builds the request authenticator: API keys from the
// database, bearer tokens from each configured OIDC issuer.
func authenticator(cfg config.Auth, keys auth.KeyStore, logger *slog.Logger) (*auth.Authenticator, error) {
	var issuers []*auth.TokenIssuer
	for _, o := range cfg.OIDC {
		ic := auth.IssuerConfig{Issuer: o.Issuer, Audiences: o.Audience, RolesClaim: o.RolesClaim,
			GroupsClaim: o.GroupsClaim, ClockSkew: o.ClockSkew, KeysMaxAge: o.KeysMaxAge,
			RequiredClaims: map[string][]string{}}
		for claim, values := range o.RequiredClaims {
			ic.RequiredClaims[claim] = values
		}
		for _, m := range o.RoleMappings {
			zones, err := normalizeZones(m.Zones)
			if err != nil {
				return nil, err
			}
			ic.Mappings = append(ic.Mappings, auth.Mapping{Claim: m.Claim, Value: m.Value, Roles: roles(m.Roles), Zones: zones})
		}
		issuers = append(issuers, auth.NewTokenIssuer(ic))
	}
	return auth.NewAuthenticator(auth.Options{Keys: keys, Issuers: issuers, RequireRoles: cfg.RequireRoles, Logger: logger}), nil
}

func normalizeZones(zones []string) ([]string, error) {
	out := make([]string, 0, len(zones))
	for _, z := range zones {
		n, err := auth.NormalizeZone(z)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func trustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := config.ParseProxy(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// CertificateSpec implements api.Backend.
func (a *App) CertificateSpec(ctx context.Context, name string) (certificate.Spec, error) {
	v, err := a.store.LatestVersion(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return certificate.Spec{}, vault.ErrNotFound
	}
	if err != nil {
		return certificate.Spec{}, err
	}
	return v.Spec, nil
}

// AuthCounters are the counters of authentication failures and successes,
// 403s and 429s, for the metrics endpoint.
func (a *App) AuthCounters() *auth.Counters { return a.counters }
