-- Members of a guild.
CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
