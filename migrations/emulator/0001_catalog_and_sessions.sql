-- The ROM catalog and play sessions. Play time is kept in milliseconds of emulated time.
CREATE TABLE roms (
    id              INTEGER PRIMARY KEY,
    title           TEXT    NOT NULL,
    system          TEXT    NOT NULL,
    sha1            TEXT    NOT NULL UNIQUE,
    size_bytes      INTEGER NOT NULL
);

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    rom_id          INTEGER NOT NULL REFERENCES roms (id),
    player          TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    stopped_at      INTEGER,
    played_ms       INTEGER NOT NULL DEFAULT 0,
    CHECK (stopped_at IS NULL OR stopped_at >= started_at)
);
CREATE INDEX sessions_by_rom ON sessions (rom_id);
