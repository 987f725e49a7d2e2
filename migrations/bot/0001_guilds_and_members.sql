-- Guild settings (read on every command) and members with their message counts and XP (the write-heavy
-- path). Ids are Discord snowflakes: 64-bit, below 2^63, stored as INTEGER.
CREATE TABLE guild_settings (
    guild_id        INTEGER PRIMARY KEY,
    prefix          TEXT    NOT NULL DEFAULT '!',
    xp_multiplier   INTEGER NOT NULL DEFAULT 1 CHECK (xp_multiplier BETWEEN 0 AND 10),
    ai_enabled      INTEGER NOT NULL DEFAULT 1 CHECK (ai_enabled IN (0, 1)),
    warn_limit      INTEGER NOT NULL DEFAULT 3 CHECK (warn_limit > 0),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE members (
    guild_id        INTEGER NOT NULL REFERENCES guild_settings (guild_id),
    user_id         INTEGER NOT NULL,
    joined_at       INTEGER NOT NULL,
    messages        INTEGER NOT NULL DEFAULT 0,
    xp              INTEGER NOT NULL DEFAULT 0,
    last_message_id INTEGER,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;

CREATE INDEX members_by_xp ON members (guild_id, xp DESC);
