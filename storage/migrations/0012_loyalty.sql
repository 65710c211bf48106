-- Loyalty in real Telegram Stars: cashback, referrals, promo codes (issue 17).
--
-- loyalty_members: a customer's personal referral code and who referred them (once,
-- forever); ``spend_next``: the loyalty balance is spent as a discount on the next invoice;
-- ``promo_code``: the code the customer entered (or got through a deep link) for the next
-- invoice.
-- loyalty_ledger: every change of a loyalty balance, with the reason; nothing changes a
-- balance without a row. ``dedup_key`` makes each change happen once
-- (accrual:<order>:<user>, reversal:<order>:<user>, spend:<order>, spend_release:<order>,
-- payout:<payout>, payout_return:<payout>:<part>). The balance is the sum of ``stars``;
-- a credit counts towards payouts once ``available_at_ts`` (the holding period) passed.
-- loyalty_order_marks: which completed orders the worker has accrued and which refunded
-- ones it has reversed (an order with nothing to accrue is marked too).
-- loyalty_payouts / loyalty_payout_parts: a withdrawal in real Stars, one supplier Stars
-- pack order per part, ``transaction_id`` derived from (payout, part): a restart or a
-- retry never pays twice.
-- promo_codes: percent or fixed Stars off; a use is an order paid with the code that is
-- not failed or refunded (counted from ``orders``, so it is released by a refund).
-- orders: ``discount_stars`` (promo + loyalty balance) and ``promo_code``; ``stars``
-- stays what the invoice charges.

CREATE TABLE loyalty_members (
    user_id      INTEGER PRIMARY KEY,
    code         TEXT    NOT NULL UNIQUE,
    referrer_id  INTEGER,
    referred_at  TEXT,
    spend_next   INTEGER NOT NULL DEFAULT 0,
    promo_code   TEXT,
    created_at   TEXT    NOT NULL
);
CREATE INDEX loyalty_members_referrer ON loyalty_members (referrer_id);

CREATE TABLE loyalty_ledger (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key        TEXT    NOT NULL UNIQUE,
    user_id          INTEGER NOT NULL,
    kind             TEXT    NOT NULL,  -- cashback | referral | reversal | spend | spend_release | payout | payout_return
    stars            INTEGER NOT NULL,  -- signed: credits > 0, debits < 0
    order_id         INTEGER,
    payout_id        INTEGER,
    available_at_ts  REAL    NOT NULL,  -- Unix seconds; credits count for payouts from then
    detail           TEXT    NOT NULL,
    at               TEXT    NOT NULL
);
CREATE INDEX loyalty_ledger_user ON loyalty_ledger (user_id, id);
CREATE INDEX loyalty_ledger_order ON loyalty_ledger (order_id, kind);

CREATE TABLE loyalty_order_marks (
    order_id  INTEGER NOT NULL,
    stage     TEXT    NOT NULL,  -- accrued | reversed
    at        TEXT    NOT NULL,
    PRIMARY KEY (order_id, stage)
);

CREATE TABLE loyalty_payouts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL,
    stars        INTEGER NOT NULL,
    status       TEXT    NOT NULL,  -- open | done
    trigger      TEXT    NOT NULL,  -- withdraw | auto
    created_at   TEXT    NOT NULL,
    finished_at  TEXT
);
CREATE INDEX loyalty_payouts_status ON loyalty_payouts (status, id);
CREATE UNIQUE INDEX loyalty_payouts_one_open ON loyalty_payouts (user_id) WHERE status = 'open';

CREATE TABLE loyalty_payout_parts (
    payout_id          INTEGER NOT NULL REFERENCES loyalty_payouts (id),
    part               INTEGER NOT NULL,
    stars              INTEGER NOT NULL,
    supplier           TEXT    NOT NULL,
    offer_id           TEXT    NOT NULL,
    transaction_id     TEXT    NOT NULL UNIQUE,
    status             TEXT    NOT NULL,  -- pending | sending | completed | failed
    supplier_order_id  TEXT,
    supplier_price     TEXT,              -- Decimal text as received
    supplier_currency  TEXT,
    cost_usd           TEXT,              -- Decimal text
    reason             TEXT,
    PRIMARY KEY (payout_id, part)
);
CREATE INDEX loyalty_payout_parts_status ON loyalty_payout_parts (status);

CREATE TABLE promo_codes (
    code               TEXT    PRIMARY KEY,  -- upper case
    kind               TEXT    NOT NULL,     -- percent | fixed
    value              INTEGER NOT NULL,     -- percent (1-100) or Stars off
    min_order_stars    INTEGER NOT NULL DEFAULT 0,
    scope_kind         TEXT    NOT NULL DEFAULT 'all',  -- all | category | product
    scope_value        TEXT,                 -- category name, or <supplier>:<product id>
    max_uses           INTEGER,              -- NULL: unlimited
    max_uses_per_user  INTEGER,
    expires_at         TEXT,                 -- ISO-8601 UTC; NULL: never
    status             TEXT    NOT NULL DEFAULT 'active',  -- active | paused | deleted
    created_by         INTEGER,
    created_at         TEXT    NOT NULL
);

ALTER TABLE orders ADD COLUMN discount_stars INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN promo_code TEXT;
CREATE INDEX orders_promo ON orders (promo_code) WHERE promo_code IS NOT NULL;

-- Orders settled before loyalty existed earn nothing retroactively.
INSERT INTO loyalty_order_marks (order_id, stage, at)
    SELECT id, 'accrued', strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM orders
    WHERE status IN ('completed', 'failed', 'refunded');
INSERT INTO loyalty_order_marks (order_id, stage, at)
    SELECT id, 'reversed', strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM orders
    WHERE status IN ('failed', 'refunded');
