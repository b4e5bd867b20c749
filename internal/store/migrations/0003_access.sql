-- Identity and access (issue 7): managed API keys, the creator of each
-- operation, and the audit log.

-- Until now api_keys held only the keys of the configuration file, which
-- are written again at every start: the table is replaced, not copied.
DROP TABLE api_keys;

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    hash         TEXT NOT NULL UNIQUE,    -- hex SHA-256 of the key; the key itself is never kept
    roles        TEXT NOT NULL,           -- JSON array of role names
    zones        TEXT NOT NULL,           -- JSON array of zone patterns; [] is every zone
    source       TEXT NOT NULL,           -- "config" (the configuration file) or "managed" (API, CLI)
    created_by   TEXT NOT NULL,           -- actor id of who made it
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT NOT NULL DEFAULT 0
);

-- Who asked for an operation: an actor id ("key:<id>", "oidc:<iss>#<sub>",
-- "local:<user>"; empty for certkeeper's own) and a name people read.
ALTER TABLE operations ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE operations ADD COLUMN created_by_name TEXT NOT NULL DEFAULT '';

-- Append-only: nothing in certkeeper updates or deletes a row here except
-- retention pruning. id is the time in microseconds and a random part, both
-- fixed-width hex, so that it sorts by time and pages by keyset.
CREATE TABLE audit_log (
    id               TEXT PRIMARY KEY,
    at               BIGINT NOT NULL,
    actor_kind       TEXT NOT NULL,
    actor_id         TEXT NOT NULL,
    actor            TEXT NOT NULL,       -- key name, token subject, user
    actor_issuer     TEXT NOT NULL,
    action           TEXT NOT NULL,
    certificate_name TEXT NOT NULL,
    operation_id     TEXT NOT NULL,
    address          TEXT NOT NULL,
    result           TEXT NOT NULL,
    status           BIGINT NOT NULL,
    detail           TEXT NOT NULL,
    trace_id         TEXT NOT NULL
);
CREATE INDEX audit_log_by_certificate ON audit_log (certificate_name, id);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_actor_id ON audit_log (actor_id, id);
