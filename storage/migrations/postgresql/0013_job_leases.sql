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
