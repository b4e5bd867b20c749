-- Deliveries of certificate versions to destinations (files, Vault/OpenBao,
-- Azure Key Vault), and the check that the master key is the one the
-- database's sealed values were sealed with. Portable SQL, times in Unix
-- microseconds (0 = unset).

-- One row per operation and destination: the delivery of the version the
-- operation stored.
CREATE TABLE deliveries (
    operation_id     TEXT NOT NULL,
    destination      TEXT NOT NULL,
    certificate_name TEXT NOT NULL,
    version_id       TEXT NOT NULL,
    status           TEXT NOT NULL,              -- pending, delivered, retrying, failed, superseded
    attempts         BIGINT NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    receipt          TEXT NOT NULL DEFAULT '',   -- what the last attempt did, as JSON
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    delivered_at     BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (operation_id, destination)
);
CREATE INDEX deliveries_by_certificate ON deliveries (certificate_name, destination, updated_at);

-- One row per certificate and destination: what is there now, and the
-- lease that lets one delivery at a time write there.
CREATE TABLE certificate_destinations (
    certificate_name     TEXT NOT NULL,
    destination          TEXT NOT NULL,
    delivered_version_id TEXT NOT NULL DEFAULT '',
    delivered_at         BIGINT NOT NULL DEFAULT 0,
    last_attempt_at      BIGINT NOT NULL DEFAULT 0,
    last_error           TEXT NOT NULL DEFAULT '',
    lease_owner          TEXT NOT NULL DEFAULT '',
    lease_until          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (certificate_name, destination)
);

-- A known value sealed with the master key: a process started with another
-- key refuses to run instead of failing on every private key.
CREATE TABLE master_key_check (
    id           TEXT PRIMARY KEY,
    check_sealed TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
