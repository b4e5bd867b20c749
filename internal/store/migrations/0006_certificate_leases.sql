-- One issuance per certificate at a time, across every replica: the
-- operation that works on a certificate holds its lease. Times are Unix
-- microseconds.

CREATE TABLE certificate_leases (
    certificate_name TEXT PRIMARY KEY,
    operation_id     TEXT NOT NULL,     -- the operation holding the lease
    expires_at       BIGINT NOT NULL    -- renewed while the operation runs
);

CREATE INDEX operations_by_status_updated ON operations (status, updated_at);
