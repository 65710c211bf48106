-- Admin console: every admin action is audited.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id  INTEGER NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT,
    at        TEXT    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX payments_received ON payments (received_at);
CREATE INDEX orders_paid ON orders (paid_at);
