-- certkeeper's first schema. Portable SQL only: it runs unchanged on SQLite
-- and PostgreSQL. Times are Unix microseconds (BIGINT, 0 = unset).

CREATE TABLE certificates (
    name          TEXT PRIMARY KEY,
    spec          TEXT NOT NULL,          -- certificate.Spec as JSON
    acme_endpoint TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE certificate_versions (
    id               TEXT PRIMARY KEY,    -- the operation id that produced it
    certificate_name TEXT NOT NULL REFERENCES certificates (name),
    spec             TEXT NOT NULL,
    acme_endpoint    TEXT NOT NULL,
    serial           TEXT NOT NULL,
    thumbprint       TEXT NOT NULL,
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    cert_pem         TEXT NOT NULL,
    chain_pem        TEXT NOT NULL,
    key_sealed       TEXT NOT NULL,       -- PKCS#8 PEM sealed with the master key
    cert_url         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    revoked_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX certificate_versions_by_name ON certificate_versions (certificate_name, created_at);
CREATE INDEX certificate_versions_by_serial ON certificate_versions (serial);

CREATE TABLE operations (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL,
    certificate_name   TEXT NOT NULL,
    spec               TEXT NOT NULL,
    status             TEXT NOT NULL,
    steps              TEXT NOT NULL,     -- []operation.StepRecord as JSON
    failed_step        TEXT NOT NULL DEFAULT '',
    error              TEXT NOT NULL DEFAULT '',
    version_id         TEXT NOT NULL DEFAULT '',
    attempt            BIGINT NOT NULL DEFAULT 0,
    pending_challenges TEXT NOT NULL DEFAULT '', -- challenges presented and not yet removed, as JSON
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX operations_by_certificate ON operations (certificate_name, created_at);
CREATE INDEX operations_by_status ON operations (status);

CREATE TABLE acme_accounts (
    directory_url TEXT PRIMARY KEY,
    uri           TEXT NOT NULL,
    key_sealed    TEXT NOT NULL,
    contacts      TEXT NOT NULL,          -- JSON array
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE api_keys (
    name       TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,             -- hex SHA-256 of the key
    roles      TEXT NOT NULL,             -- JSON array
    source     TEXT NOT NULL,             -- "config" for keys from the configuration file
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
