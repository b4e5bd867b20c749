-- Automatic renewal (issue 5): the ACME account that issued each version and
-- the certificate it replaced (RFC 9773 section 5), and one schedule row per
-- certificate that the renewal scheduler reads by next_check_at.

ALTER TABLE certificate_versions ADD COLUMN account_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE certificate_versions ADD COLUMN replaces TEXT NOT NULL DEFAULT '';

CREATE TABLE renewals (
    certificate_name  TEXT PRIMARY KEY REFERENCES certificates (name) ON DELETE CASCADE,
    version_id        TEXT NOT NULL DEFAULT '',   -- the version the schedule was worked out for
    next_check_at     BIGINT NOT NULL,            -- when the scheduler looks at it next
    renew_at          BIGINT NOT NULL DEFAULT 0,  -- the planned renewal moment, 0 = not known yet
    source            TEXT NOT NULL DEFAULT '',   -- ari or lifetime
    window_start      BIGINT NOT NULL DEFAULT 0,  -- the CA's suggested window (ARI)
    window_end        BIGINT NOT NULL DEFAULT 0,
    explanation_url   TEXT NOT NULL DEFAULT '',
    ari_next_at       BIGINT NOT NULL DEFAULT 0,  -- when to ask the CA's renewalInfo again
    status            TEXT NOT NULL DEFAULT 'scheduled',
    message           TEXT NOT NULL DEFAULT '',
    failures          BIGINT NOT NULL DEFAULT 0,  -- consecutive failed renewals
    retry_at          BIGINT NOT NULL DEFAULT 0,  -- no renewal attempt before this (backoff)
    operation_id      TEXT NOT NULL DEFAULT '',   -- the renewal in flight
    last_checked_at   BIGINT NOT NULL DEFAULT 0,
    expiring_notified TEXT NOT NULL DEFAULT '',   -- the version the expiring event was sent for
    updated_at        BIGINT NOT NULL
);
CREATE INDEX renewals_by_next_check ON renewals (next_check_at);
CREATE INDEX renewals_in_flight ON renewals (operation_id) WHERE operation_id <> '';

INSERT INTO renewals (certificate_name, next_check_at, updated_at) SELECT name, 0, 0 FROM certificates;
