-- One product, several sources (services.routing). Offers of different suppliers that are
-- the same good share a ``link_key`` (normalised category, product name and amount, written
-- by every sync); admins override it per offer in ``offer_links`` (a manual link, or
-- ``apart``: kept out of automatic matching), which no sync touches. Products of several
-- suppliers with the same normalised name share a ``product_key``; only one of them is
-- ``listed`` in the storefront and its page shows the offers of all of them.
-- Rows written before this migration have no keys: each stays a source of its own until
-- the next sync of its supplier fills them in.
ALTER TABLE offers ADD COLUMN link_key TEXT;
ALTER TABLE offers ADD COLUMN product_key TEXT;
CREATE INDEX offers_link ON offers (link_key);
CREATE INDEX offers_product_key ON offers (product_key);

ALTER TABLE products ADD COLUMN product_key TEXT;
ALTER TABLE products ADD COLUMN listed INTEGER NOT NULL DEFAULT 1;
CREATE INDEX products_key ON products (product_key);
-- the storefront's pages read listed products of a category, best sellers first: with
-- ``listed`` in the index a deep page skips rows without reading each one
DROP INDEX products_category;
CREATE INDEX products_category ON products (listed, category, sold DESC, name COLLATE NOCASE);

CREATE TABLE offer_links (
    supplier    TEXT    NOT NULL,
    offer_id    TEXT    NOT NULL,
    group_key   TEXT    NOT NULL,      -- offers with the same group are one good
    how         TEXT    NOT NULL CHECK (how IN ('manual', 'apart')),
    admin_id    INTEGER,
    at          TEXT    NOT NULL,
    PRIMARY KEY (supplier, offer_id)
);
CREATE INDEX offer_links_group ON offer_links (group_key);

-- Every create-order an order sent or was about to send, one per source: the order row
-- carries the current attempt; these rows keep the ones that were refused or proven absent.
CREATE TABLE order_attempts (
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    supplier        TEXT    NOT NULL,
    offer_id        TEXT    NOT NULL,
    transaction_id  TEXT    NOT NULL UNIQUE,
    price           TEXT    NOT NULL,   -- Decimal text as sent
    currency        TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,   -- current | refused | absent
    detail          TEXT,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT,
    PRIMARY KEY (order_id, supplier, offer_id)
);
