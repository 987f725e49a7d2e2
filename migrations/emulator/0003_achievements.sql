-- Achievements unlocked per player and game; unlocking twice keeps the first time.
CREATE TABLE achievements (
    rom_id          INTEGER NOT NULL REFERENCES roms (id),
    player          TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    unlocked_at     INTEGER NOT NULL,
    PRIMARY KEY (rom_id, player, name)
) WITHOUT ROWID;
