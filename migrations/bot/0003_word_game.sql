-- Per-user statistics of the word game (guess the five-letter word).
CREATE TABLE word_game_stats (
    guild_id        INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    played          INTEGER NOT NULL DEFAULT 0,
    won             INTEGER NOT NULL DEFAULT 0,
    guesses         INTEGER NOT NULL DEFAULT 0,
    best            INTEGER,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;
