-- Words customers type for a product that its name does not contain ("hsr", "cod"):
-- search reads ``alias`` as ``target``. The owner extends the list with /alias.
CREATE TABLE search_aliases (
    alias       TEXT PRIMARY KEY,      -- lower case, as normalised by services.search
    target      TEXT NOT NULL,         -- the words searched instead
    added_by    INTEGER,
    added_at    TEXT NOT NULL
);
INSERT INTO search_aliases (alias, target, added_at) VALUES
    ('hsr', 'honkai star rail', '2026-12-02T00:00:00.000Z'),
    ('cod', 'call of duty', '2026-12-02T00:00:00.000Z'),
    ('codm', 'call of duty mobile', '2026-12-02T00:00:00.000Z'),
    ('mlbb', 'mobile legends', '2026-12-02T00:00:00.000Z'),
    ('ml', 'mobile legends', '2026-12-02T00:00:00.000Z'),
    ('coc', 'clash of clans', '2026-12-02T00:00:00.000Z'),
    ('ff', 'free fire', '2026-12-02T00:00:00.000Z'),
    ('psn', 'playstation', '2026-12-02T00:00:00.000Z'),
    ('ps', 'playstation', '2026-12-02T00:00:00.000Z'),
    ('gi', 'genshin impact', '2026-12-02T00:00:00.000Z');
