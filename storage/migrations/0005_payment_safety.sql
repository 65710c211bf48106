-- Every charge ends delivered or refunded, and every customer message about an order is
-- sent from a durable outbox.
--
-- payments: a charge that cannot be attached to an open order (already paid, expired,
-- another user's order, unknown payload, wrong amount or currency) is still recorded
-- under its charge id, with attached = 0 and the reason, and refunded.
-- refunds: keyed by charge id (an order may see a second charge); settles_order = 1 when
-- the refund is of the order's own charge (the order becomes refunded when it is done).
-- deliveries: messages to customers, retried until sent or the user blocked the bot.

CREATE TABLE payments_new (
    charge_id           TEXT PRIMARY KEY,              -- telegram_payment_charge_id, unique
    order_id            INTEGER REFERENCES orders (id), -- NULL: the payload named no order of ours
    user_id             INTEGER NOT NULL,
    stars               INTEGER NOT NULL,
    currency            TEXT    NOT NULL,
    provider_charge_id  TEXT,
    received_at         TEXT    NOT NULL,
    attached            INTEGER NOT NULL DEFAULT 1,    -- 0: not attached to the order; refunded
    reject_reason       TEXT,                          -- why it was not attached
    payload             TEXT
);
INSERT INTO payments_new (charge_id, order_id, user_id, stars, currency, provider_charge_id,
                          received_at)
    SELECT charge_id, order_id, user_id, stars, currency, provider_charge_id, received_at
    FROM payments;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_received ON payments (received_at);
CREATE INDEX payments_order ON payments (order_id);

CREATE TABLE refunds_new (
    charge_id          TEXT    PRIMARY KEY,
    order_id           INTEGER REFERENCES orders (id),
    settles_order      INTEGER NOT NULL DEFAULT 1,
    user_id            INTEGER NOT NULL,
    stars              INTEGER NOT NULL,
    reason             TEXT,
    status             TEXT    NOT NULL DEFAULT 'pending',  -- pending | done
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ts REAL    NOT NULL,
    last_error         TEXT,
    created_at         TEXT    NOT NULL,
    done_at            TEXT
);
INSERT INTO refunds_new (charge_id, order_id, settles_order, user_id, stars, reason, status,
                         attempts, next_attempt_at_ts, last_error, created_at, done_at)
    SELECT charge_id, order_id, 1, user_id, stars, reason, status, attempts,
           next_attempt_at_ts, last_error, created_at, done_at
    FROM refunds;
DROP TABLE refunds;
ALTER TABLE refunds_new RENAME TO refunds;
CREATE INDEX refunds_due ON refunds (status, next_attempt_at_ts);
CREATE UNIQUE INDEX refunds_order_charge ON refunds (order_id) WHERE settles_order = 1;

CREATE TABLE deliveries (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key          TEXT    NOT NULL UNIQUE,    -- order:<id>:<kind> or charge:<id>:<kind>
    user_id            INTEGER NOT NULL,
    chat_id            INTEGER NOT NULL,
    order_id           INTEGER REFERENCES orders (id),
    kind               TEXT    NOT NULL,           -- completed | processing | failed | refunded | ...
    params             TEXT,                       -- JSON for messages not rendered from an order
    with_menu          INTEGER NOT NULL DEFAULT 0, -- add the after-delivery keyboard
    status             TEXT    NOT NULL DEFAULT 'pending',  -- pending | sent | blocked | failed
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ts REAL    NOT NULL,
    last_error         TEXT,
    created_at         TEXT    NOT NULL,
    sent_at            TEXT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at_ts);
CREATE INDEX deliveries_chat ON deliveries (chat_id, status, id);

-- What was told before the outbox existed counts as sent: only messages of orders settled
-- from now on can be found missing after a crash.
INSERT INTO deliveries (dedup_key, user_id, chat_id, order_id, kind, status, next_attempt_at_ts,
                        created_at, sent_at)
    SELECT 'order:' || id || ':' || status, user_id, chat_id, id, status, 'sent', 0,
           updated_at, updated_at
    FROM orders WHERE status IN ('completed', 'refunded');
