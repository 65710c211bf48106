-- Broadcasts and promo Stars reward campaigns. Each recipient row carries its own state,
-- so a job resumes after a restart where it stopped and never repeats a recipient.

CREATE TABLE broadcasts (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id             INTEGER NOT NULL,
    source_chat_id       INTEGER NOT NULL,      -- the message to copy (copyMessage)
    source_message_id    INTEGER NOT NULL,
    button_text          TEXT,
    button_url           TEXT,
    status               TEXT    NOT NULL,      -- running | canceled | done
    progress_chat_id     INTEGER,
    progress_message_id  INTEGER,
    created_at           TEXT    NOT NULL,
    finished_at          TEXT
);

CREATE TABLE broadcast_recipients (
    broadcast_id  INTEGER NOT NULL REFERENCES broadcasts (id),
    user_id       INTEGER NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'pending',  -- pending | sending | sent | failed | blocked
    error         TEXT,
    sent_at       TEXT,
    PRIMARY KEY (broadcast_id, user_id)
);
CREATE INDEX broadcast_recipients_status ON broadcast_recipients (broadcast_id, status);

CREATE TABLE campaigns (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id             INTEGER NOT NULL,
    name                 TEXT    NOT NULL,
    promo_text           TEXT    NOT NULL,
    status               TEXT    NOT NULL,      -- draft | running | canceled | done
    progress_chat_id     INTEGER,
    progress_message_id  INTEGER,
    created_at           TEXT    NOT NULL,
    finished_at          TEXT
);

CREATE TABLE campaign_rewards (
    campaign_id        INTEGER NOT NULL REFERENCES campaigns (id),
    line_no            INTEGER NOT NULL,          -- the recipient's line in the list
    part               INTEGER NOT NULL,          -- one Stars pack order per part
    raw                TEXT    NOT NULL,
    user_id            INTEGER,
    display            TEXT,
    stars              INTEGER NOT NULL,          -- Stars of this part
    offer_id           INTEGER,
    transaction_id     TEXT    NOT NULL UNIQUE,   -- derived from (campaign, line, part)
    status             TEXT    NOT NULL,          -- unresolved | pending | sending | completed | failed
    supplier_order_id  INTEGER,
    reason             TEXT,
    notified           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, line_no, part)
);
CREATE INDEX campaign_rewards_status ON campaign_rewards (campaign_id, status);
