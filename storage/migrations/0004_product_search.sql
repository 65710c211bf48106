-- Search products, not offers: customers look for a game or a card, and ranking ~12k
-- products in FTS5 is far cheaper than grouping thousands of matching offers per query.
-- The product name weighs more than the names of its denominations (bm25 weights).
DROP TABLE offers_fts;

ALTER TABLE products ADD COLUMN offer_names TEXT NOT NULL DEFAULT '';

CREATE VIRTUAL TABLE products_fts USING fts5(
    name, offer_names,
    content = 'products', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
INSERT INTO products_fts (products_fts) VALUES ('rebuild');
