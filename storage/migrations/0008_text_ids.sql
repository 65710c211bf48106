-- Offers are (supplier, offer id as text) everywhere: Gaming Goods ids are UUIDs and an
-- INTEGER column would turn a numeric-looking id back into a number. Every table holding an
-- offer, product or supplier order id is rebuilt with TEXT columns, carrying every row over
-- (numbers become their decimal text: 999 -> '999'). Offers gain ``image_url`` (storefront);
-- ``orders.delivered_key`` may now hold several keys, one per line. Campaign rewards name
-- their supplier; the rows made before this migration were all bought from the only
-- supplier the shop then had.
-- Runs with foreign keys off (see Database.migrate): orders is referenced by other tables.

CREATE TABLE offers_new (
    supplier      TEXT    NOT NULL,
    offer_id      TEXT    NOT NULL,
    product_id    TEXT    NOT NULL,
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
    image_url     TEXT,                             -- a picture of the product, when given
    PRIMARY KEY (supplier, offer_id)
);
INSERT INTO offers_new (supplier, offer_id, product_id, product_name, offer_name, category,
                        price, currency, in_stock, needs_player, needs_server, returns_key,
                        stars_amount, active, synced_at)
    SELECT supplier, CAST(offer_id AS TEXT), CAST(product_id AS TEXT), product_name, offer_name,
           category, price, currency, in_stock, needs_player, needs_server, returns_key,
           stars_amount, active, synced_at
    FROM offers;
DROP TABLE offers;
ALTER TABLE offers_new RENAME TO offers;
CREATE INDEX offers_product ON offers (supplier, product_id, active);

DROP TABLE products_fts;
CREATE TABLE products_new (
    supplier     TEXT    NOT NULL,
    product_id   TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    category     TEXT    NOT NULL,
    offer_count  INTEGER NOT NULL,
    sold         INTEGER NOT NULL DEFAULT 0,        -- completed orders, for "best sellers first"
    offer_names  TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (supplier, product_id)
);
INSERT INTO products_new (supplier, product_id, name, category, offer_count, sold, offer_names)
    SELECT supplier, CAST(product_id AS TEXT), name, category, offer_count, sold, offer_names
    FROM products;
DROP TABLE products;
ALTER TABLE products_new RENAME TO products;
CREATE INDEX products_category ON products (category, sold DESC, name COLLATE NOCASE);
CREATE VIRTUAL TABLE products_fts USING fts5(
    name, offer_names,
    content = 'products', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
INSERT INTO products_fts (products_fts) VALUES ('rebuild');

CREATE TABLE orders_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            INTEGER NOT NULL REFERENCES users (id),
    chat_id            INTEGER NOT NULL,
    kind               TEXT    NOT NULL DEFAULT 'goods',   -- goods | stars_gift
    supplier           TEXT    NOT NULL,
    offer_id           TEXT    NOT NULL,
    product_id         TEXT    NOT NULL,
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
    supplier_order_id  TEXT,
    supplier_status    TEXT,
    delivered_key      TEXT,                               -- one key per line
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
    stuck_flagged      INTEGER NOT NULL DEFAULT 0,
    supplier_absent_since_ts REAL
);
INSERT INTO orders_new (id, user_id, chat_id, kind, supplier, offer_id, product_id, product_name,
                        offer_name, returns_key, game_user_id, game_server_id, game_server_label,
                        player_login, recipient_name, supplier_price, supplier_currency, cost_usd,
                        stars, status, transaction_id, charge_id, supplier_order_id,
                        supplier_status, delivered_key, fulfillment, failure_reason,
                        failure_code, test_mode, created_at, updated_at, paid_at, finished_at,
                        next_check_at_ts, check_attempts, stuck_flagged, supplier_absent_since_ts)
    SELECT id, user_id, chat_id, kind, supplier, CAST(offer_id AS TEXT), CAST(product_id AS TEXT),
           product_name, offer_name, returns_key, game_user_id, game_server_id, game_server_label,
           player_login, recipient_name, supplier_price, supplier_currency, cost_usd, stars,
           status, transaction_id, charge_id, CAST(supplier_order_id AS TEXT), supplier_status,
           delivered_key, fulfillment, failure_reason, failure_code, test_mode, created_at,
           updated_at, paid_at, finished_at, next_check_at_ts, check_attempts, stuck_flagged,
           supplier_absent_since_ts
    FROM orders;
-- keep the id sequence where it was (ids of deleted rows are never given again)
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'orders_new', seq FROM sqlite_sequence WHERE name = 'orders'
        AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'orders_new');
UPDATE sqlite_sequence
    SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'orders'), 0))
    WHERE name = 'orders_new';
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
CREATE INDEX orders_user ON orders (user_id, id DESC);
CREATE INDEX orders_due ON orders (status, next_check_at_ts);
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_paid ON orders (paid_at);

CREATE TABLE campaign_rewards_new (
    campaign_id        INTEGER NOT NULL REFERENCES campaigns (id),
    line_no            INTEGER NOT NULL,          -- the recipient's line in the list
    part               INTEGER NOT NULL,          -- one Stars pack order per part
    raw                TEXT    NOT NULL,
    user_id            INTEGER,
    display            TEXT,
    stars              INTEGER NOT NULL,          -- Stars of this part
    supplier           TEXT,                      -- the supplier of offer_id
    offer_id           TEXT,
    transaction_id     TEXT    NOT NULL UNIQUE,   -- derived from (campaign, line, part)
    status             TEXT    NOT NULL,          -- unresolved | pending | sending | completed | failed
    supplier_order_id  TEXT,
    reason             TEXT,
    notified           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, line_no, part)
);
INSERT INTO campaign_rewards_new (campaign_id, line_no, part, raw, user_id, display, stars,
                                  supplier, offer_id, transaction_id, status, supplier_order_id,
                                  reason, notified)
    SELECT campaign_id, line_no, part, raw, user_id, display, stars,
           CASE WHEN offer_id IS NULL THEN NULL ELSE 'gamesdrop' END,
           CAST(offer_id AS TEXT), transaction_id, status, CAST(supplier_order_id AS TEXT),
           reason, notified
    FROM campaign_rewards;
DROP TABLE campaign_rewards;
ALTER TABLE campaign_rewards_new RENAME TO campaign_rewards;
CREATE INDEX campaign_rewards_status ON campaign_rewards (campaign_id, status);

-- Offer ids an admin listed for a supplier without a catalogue feed (``/offers``):
-- refreshed by find-one on the sync schedule, beside the ids in its settings section.
CREATE TABLE listed_offers (
    supplier  TEXT NOT NULL,
    offer_id  TEXT NOT NULL,
    added_by  INTEGER,
    added_at  TEXT NOT NULL,
    PRIMARY KEY (supplier, offer_id)
);
