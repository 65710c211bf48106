-- Job leases (issue 20): each background job (order worker, refund worker, delivery
-- outbox, broadcasts...) runs in one process at a time across every worker process on
-- this database. A process holds a job while ``expires_at`` (ISO-8601 UTC text, from the
-- application clock) is ahead; it renews every ttl/3, and another process takes the job
-- over once the holder stopped renewing (killed) and the lease expired. ``holder`` is
-- ``<hostname>:<pid>:<random>``; ``node`` says where that pid means something (hostname,
-- boot and pid namespace), so a restarted process can take over at once from a dead
-- predecessor on the same machine. A clean stop deletes the row.
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
