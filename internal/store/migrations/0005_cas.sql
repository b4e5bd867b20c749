-- Several named CAs (issue 6): each version records the configured name of
-- the CA that issued it, and a replace operation records the version it
-- replaces and the reason it is revoked with once the new one is stored.

ALTER TABLE certificate_versions ADD COLUMN ca_name TEXT NOT NULL DEFAULT '';

ALTER TABLE operations ADD COLUMN replaces_version TEXT NOT NULL DEFAULT '';

ALTER TABLE operations ADD COLUMN revocation_reason BIGINT NOT NULL DEFAULT 0;
