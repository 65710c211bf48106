-- Conversation state (aiogram FSM) per chat and user: a row exists only while a user is
-- inside a conversation step or has step data; clearing both deletes the row, so the
-- table holds the conversations in progress, not every user ever seen. Kept on disk so a
-- restart does not drop a customer in the middle of a step.
CREATE TABLE fsm_state (
    key TEXT PRIMARY KEY,
    state TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL
);
