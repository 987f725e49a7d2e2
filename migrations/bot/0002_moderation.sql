-- Warnings, active tempbans with their expiry, and a log of every ban (lifted or not).
CREATE TABLE warnings (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    moderator_id    INTEGER NOT NULL,
    reason          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL -- no foreign key to members: a user who left can still be warned
);
CREATE INDEX warnings_by_member ON warnings (guild_id, user_id);

CREATE TABLE ban_log (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    moderator_id    INTEGER NOT NULL,
    reason          TEXT    NOT NULL,
    banned_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    lifted_at       INTEGER
);

-- One row per active tempban; the sweep deletes it and stamps ban_log.lifted_at in the same transaction.
CREATE TABLE tempbans (
    guild_id        INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    ban_id          INTEGER NOT NULL UNIQUE REFERENCES ban_log (id),
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;
CREATE INDEX tempbans_by_expiry ON tempbans (expires_at);
