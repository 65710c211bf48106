-- Own stock (issue 14): keys the shop holds itself, sold as the source "own_stock".
-- Each product held is one own-stock offer; its id (as text) is the offer id. It carries
-- the product id, names and category of the catalogue offer it was uploaded for
-- (source_supplier, source_offer_id), or of a product an admin named.
CREATE TABLE stock_products (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id       TEXT    NOT NULL,
    product_name     TEXT    NOT NULL,
    offer_name       TEXT    NOT NULL,
    category         TEXT    NOT NULL,
    source_supplier  TEXT,
    source_offer_id  TEXT,
    low_alerted      INTEGER NOT NULL DEFAULT 0,   -- 1: admins were told it runs low
    created_at       TEXT    NOT NULL,
    created_by       INTEGER,
    UNIQUE (source_supplier, source_offer_id),
    UNIQUE (product_name, offer_name, category)
);

-- One key. ``secret`` is the key encrypted with Fernet (key derived from STOCK__KEY);
-- ``fingerprint`` an HMAC-SHA256 of it (another derived key), so a duplicate is found
-- without the key ever being stored in the clear. A key leaves the stock either sold
-- (``taken_by``: the order's transaction id, one key per order) or withdrawn for the
-- marketplace (``withdrawn``: the batch id).
CREATE TABLE stock_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    product       INTEGER NOT NULL REFERENCES stock_products (id),
    secret        TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL UNIQUE,
    cost          TEXT    NOT NULL,                -- Decimal text, per key
    currency      TEXT    NOT NULL,
    uploaded_at   TEXT    NOT NULL,
    uploaded_by   INTEGER,
    taken_by      TEXT    UNIQUE,
    taken_at      TEXT,
    withdrawn     TEXT,
    withdrawn_at  TEXT
);
CREATE INDEX stock_keys_available ON stock_keys (product, id)
    WHERE taken_by IS NULL AND withdrawn IS NULL;
CREATE INDEX stock_keys_withdrawn ON stock_keys (withdrawn) WHERE withdrawn IS NOT NULL;
