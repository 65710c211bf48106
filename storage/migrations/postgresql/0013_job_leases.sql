-- Job leases (issue 20): the PostgreSQL twin of ../0013_job_leases.sql (same columns,
-- same meaning; times are ISO-8601 UTC text from the application clock, compared as text).
CREATE TABLE job_leases (
    job         TEXT NOT NULL PRIMARY KEY,
    holder      TEXT NOT NULL,
    node        TEXT,
    expires_at  TEXT NOT NULL,
    renewed_at  TEXT NOT NULL,
    claimed_at  TEXT NOT NULL
);

-- The delivery outbox claims a message before sending it (storage/deliveries.py claim):
-- ``claimed_by`` names the outbox that moved its due time ahead. The next outbox to start
-- (a restart, or another worker taking the outbox over) makes such messages due again.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
