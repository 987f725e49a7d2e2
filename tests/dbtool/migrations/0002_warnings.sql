-- Warnings refer to members.
CREATE TABLE warnings (
    id        INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members (id),
    reason    TEXT    NOT NULL
);
