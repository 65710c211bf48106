-- The order log: users, the synced catalogue, orders with their events, payments and the
-- refund outbox. Audit times are ISO-8601 UTC text; scheduling columns (*_at_ts) are Unix
-- seconds (REAL) so background workers can compare them cheaply.

CREATE TABLE users (
    id                INTEGER PRIMARY KEY,          -- Telegram user id
    username          TEXT,
    first_name        TEXT NOT NULL DEFAULT '',
    language          TEXT,                         -- chosen in the Language menu; NULL: follow Telegram
    telegram_language TEXT,
    first_seen        TEXT NOT NULL,
    last_seen         TEXT NOT NULL,
    is_blocked        INTEGER NOT NULL DEFAULT 0,   -- the user blocked the bot (403)
    is_banned         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX users_username ON users (lower(username));
CREATE INDEX users_first_seen ON users (first_seen);

CREATE TABLE offers (
    supplier      TEXT    NOT NULL,
    offer_id      INTEGER NOT NULL,
    product_id    INTEGER NOT NULL,
    product_name  TEXT    NOT NULL,
    offer_name    TEXT    NOT NULL,
    category      TEXT    NOT NULL,
    price         TEXT    NOT NULL,                 -- supplier price, Decimal text as received
    currency      TEXT    NOT NULL,
    in_stock      INTEGER NOT NULL,
    needs_player  INTEGER NOT NULL,
    needs_server  INTEGER NOT NULL,
    returns_key   INTEGER,                          -- NULL until find-one has told
    stars_amount  INTEGER,                          -- Telegram Stars packs only
    active        INTEGER NOT NULL DEFAULT 1,       -- 0: gone from the last full sync
    synced_at     TEXT    NOT NULL,
    PRIMARY KEY (supplier, offer_id)
);
CREATE INDEX offers_product ON offers (supplier, product_id, active);

CREATE TABLE products (
    supplier     TEXT    NOT NULL,
    product_id   INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    category     TEXT    NOT NULL,
    offer_count  INTEGER NOT NULL,
    sold         INTEGER NOT NULL DEFAULT 0,        -- completed orders, for "best sellers first"
    PRIMARY KEY (supplier, product_id)
);
CREATE INDEX products_category ON products (category, sold DESC, name COLLATE NOCASE);

CREATE VIRTUAL TABLE offers_fts USING fts5(
    product_name, offer_name,
    content = 'offers', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);

CREATE TABLE orders (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            INTEGER NOT NULL REFERENCES users (id),
    chat_id            INTEGER NOT NULL,
    kind               TEXT    NOT NULL DEFAULT 'goods',   -- goods | stars_gift
    supplier           TEXT    NOT NULL,
    offer_id           INTEGER NOT NULL,
    product_id         INTEGER NOT NULL,
    product_name       TEXT    NOT NULL,
    offer_name         TEXT    NOT NULL,
    returns_key        INTEGER NOT NULL,
    game_user_id       TEXT,
    game_server_id     TEXT,
    game_server_label  TEXT,
    player_login       TEXT,
    recipient_name     TEXT,                               -- Stars gifts: who receives them
    supplier_price     TEXT    NOT NULL,                   -- Decimal text, exactly as last received
    supplier_currency  TEXT    NOT NULL,
    cost_usd           TEXT    NOT NULL,                   -- our estimate at checkout, Decimal text
    stars              INTEGER NOT NULL,
    status             TEXT    NOT NULL,
    transaction_id     TEXT    NOT NULL UNIQUE,            -- sent to the supplier as transactionId
    charge_id          TEXT    UNIQUE,                     -- telegram_payment_charge_id
    supplier_order_id  INTEGER,
    supplier_status    TEXT,
    delivered_key      TEXT,
    fulfillment        TEXT,                               -- supplier fulfillmentData, JSON
    failure_reason     TEXT,
    failure_code       TEXT,
    test_mode          INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    paid_at            TEXT,
    finished_at        TEXT,
    next_check_at_ts   REAL,
    check_attempts     INTEGER NOT NULL DEFAULT 0,
    stuck_flagged      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX orders_user ON orders (user_id, id DESC);
CREATE INDEX orders_due ON orders (status, next_check_at_ts);
CREATE INDEX orders_created ON orders (created_at);

CREATE TABLE order_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    at           TEXT    NOT NULL,
    from_status  TEXT,
    to_status    TEXT    NOT NULL,
    detail       TEXT
);
CREATE INDEX order_events_order ON order_events (order_id, id);

CREATE TABLE payments (
    charge_id           TEXT PRIMARY KEY,              -- telegram_payment_charge_id, unique
    order_id            INTEGER NOT NULL REFERENCES orders (id),
    user_id             INTEGER NOT NULL,
    stars               INTEGER NOT NULL,
    currency            TEXT    NOT NULL,
    provider_charge_id  TEXT,
    received_at         TEXT    NOT NULL
);

CREATE TABLE refunds (
    order_id          INTEGER PRIMARY KEY REFERENCES orders (id),
    user_id           INTEGER NOT NULL,
    charge_id         TEXT    NOT NULL UNIQUE,
    stars             INTEGER NOT NULL,
    reason            TEXT,
    status            TEXT    NOT NULL DEFAULT 'pending',  -- pending | done
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ts REAL   NOT NULL,
    last_error        TEXT,
    created_at        TEXT    NOT NULL,
    done_at           TEXT
);
CREATE INDEX refunds_due ON refunds (status, next_attempt_at_ts);

CREATE TABLE shop_settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  INTEGER
);

CREATE TABLE sync_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    supplier     TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    offers       INTEGER,
    status       TEXT NOT NULL,          -- running | ok | failed
    error        TEXT
);
