-- Every stored certificate has a renewal schedule (insertVersion writes one
-- since this version). Certificates stored without one before — imported
-- from Key Vault Acmebot — get one due at once, so that the scheduler, which
-- reads schedules only, renews them.

INSERT INTO renewals (certificate_name, next_check_at, updated_at)
SELECT c.name, 0, 0 FROM certificates c
WHERE NOT EXISTS (SELECT 1 FROM renewals r WHERE r.certificate_name = c.name)
AND EXISTS (SELECT 1 FROM certificate_versions v WHERE v.certificate_name = c.name);
