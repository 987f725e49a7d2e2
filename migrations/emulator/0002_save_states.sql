-- Save-state slots. A save replaces every chunk of the slot and bumps its version in one transaction, so
-- a reader (or a crash) sees either the previous version whole or the new one whole.
CREATE TABLE save_slots (
    rom_id          INTEGER NOT NULL REFERENCES roms (id),
    player          TEXT    NOT NULL,
    slot            INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 9),
    version         INTEGER NOT NULL CHECK (version > 0),
    chunks          INTEGER NOT NULL,
    size_bytes      INTEGER NOT NULL,
    checksum        INTEGER NOT NULL, -- FNV-1a 64 of the whole state, as a signed 64-bit integer
    saved_at        INTEGER NOT NULL,
    PRIMARY KEY (rom_id, player, slot)
) WITHOUT ROWID;

CREATE TABLE save_chunks (
    rom_id          INTEGER NOT NULL,
    player          TEXT    NOT NULL,
    slot            INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    chunk           INTEGER NOT NULL,
    data            BLOB    NOT NULL,
    PRIMARY KEY (rom_id, player, slot, chunk)
) WITHOUT ROWID;
