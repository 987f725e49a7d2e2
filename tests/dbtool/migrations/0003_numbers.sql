-- A table with enough rows that applying it takes a moment (the two-migrator test overlaps on it).
CREATE TABLE numbers (n INTEGER PRIMARY KEY, label TEXT NOT NULL);
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 200000)
INSERT INTO numbers SELECT i, printf('number %d', i) FROM seq;
