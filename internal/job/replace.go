package job

import (
	"context"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-acme/lego/v5/acme"

	"github.com/certkeeper/certkeeper/internal/certificate"
	"github.com/certkeeper/certkeeper/internal/issuer"
	"github.com/certkeeper/certkeeper/internal/operation"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// VersionRevoker reads a stored version with its private key and records
// its revocation; the runner needs it for replace operations.
type VersionRevoker interface {
	// ByID returns the version with its private key, or vault.ErrNotFound.
	ByID(ctx context.Context, id string) (vault.Version, error)
	// MarkRevoked records the revocation of a version.
	MarkRevoked(ctx context.Context, versionID string, at time.Time) error
}

var _ VersionRevoker = (*vault.Builtin)(nil)

// EnqueueReplace records a replace operation for spec and its job in one
// transaction: the certificate is issued again with a new key, and once the
// new version is stored the version replaced (versionID) is revoked with
// the RFC 5280 reason code. It returns the operation id.
func (q *Queue) EnqueueReplace(ctx context.Context, spec certificate.Spec, versionID string, reason int) (string, error) {
	now := time.Now().UTC()
	op := operation.Operation{
		ID: operation.NewID(), Kind: operation.KindReplace, CertificateName: spec.Name, Status: operation.StatusPending,
		CreatedAt: now, UpdatedAt: now,
	}
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := q.store.InsertOperation(ctx, tx, op, spec); err != nil {
			return err
		}
		if err := q.store.SetReplacement(ctx, tx, op.ID, versionID, reason); err != nil {
			return err
		}
		if _, err := q.client.InsertTx(ctx, tx, IssueArgs{OperationID: op.ID}, nil); err != nil {
			return fmt.Errorf("enqueueing operation %s: %w", op.ID, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	q.logger.InfoContext(ctx, "operation enqueued", "operation_id", op.ID, "kind", op.Kind, "certificate", spec.Name,
		"replaces", versionID, "reason", reason)
	return op.ID, nil
}

// revokeReplaced revokes the version a replace operation replaces, once its
// new version is stored, at the CA that issued it and with the recorded
// reason (keyCompromise signed by the old certificate's own key). It does
// nothing for other operations or when the version is already revoked. A
// failure at the CA fails the operation at StepRevoking, with the new
// version kept, and reports failed; an error is returned only when the
// operation should be run again.
func (r *Runner) revokeReplaced(ctx context.Context, t *tracker) (failed bool, err error) {
	if t.op.Kind != operation.KindReplace {
		return false, nil
	}
	versionID, reason, err := r.store.Replacement(ctx, t.op.ID)
	if err != nil {
		return false, err
	}
	if versionID == "" {
		return false, nil
	}
	t.enter(ctx, operation.StepRevoking)
	fail := func(err error) (bool, error) {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, fmt.Errorf("operation %s interrupted: %w", t.op.ID, ctx.Err())
		}
		t.mu.Lock()
		t.op.VersionID = t.op.ID // the new version is stored
		t.mu.Unlock()
		return true, t.fail(ctx, operation.StepRevoking, fmt.Errorf("the new version %s is stored; revoking the replaced version %s: %w",
			t.op.ID, versionID, err))
	}
	versions, ok := r.vault.(VersionRevoker)
	if !ok {
		return fail(errors.New("the vault cannot read versions by id"))
	}
	old, err := versions.ByID(ctx, versionID)
	if err != nil {
		return fail(err)
	}
	if old.RevokedAt != nil {
		if old.RevokedAt.After(t.op.CreatedAt) {
			t.revoked = &old // an earlier attempt of this operation revoked it
		}
		return false, nil
	}
	ca, err := r.cas.ForVersion(old.CA, old.ACMEEndpoint)
	if err != nil {
		return fail(err)
	}
	t.useCA(ca.Name())
	block, _ := pem.Decode(old.CertPEM)
	if block == nil {
		return fail(errors.New("the stored certificate is not PEM"))
	}
	key, err := issuer.ParseKeyPEM(old.KeyPEM)
	if err != nil {
		return fail(err)
	}
	err = ca.RevokeCertificate(ctx, block.Bytes, key, reason)
	if pe, ok := errors.AsType[*issuer.ProblemError](err); ok && pe.Type == acme.AlreadyRevokedErrorType {
		err = nil // an earlier attempt got as far as the CA
	}
	if err != nil {
		return fail(err)
	}
	now := time.Now().UTC()
	if err := versions.MarkRevoked(ctx, old.ID, now); err != nil {
		return false, err
	}
	old.RevokedAt, t.revoked = &now, &old
	t.logger.InfoContext(ctx, "replaced version revoked", "version", old.ID, "serial", old.Serial, "reason", reason, "ca", ca.Name())
	return false, nil
}
