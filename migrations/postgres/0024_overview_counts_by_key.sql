-- SQLite's 0024 keeps the overview's counts in one B-tree ordered by their key, as PostgreSQL's
-- primary key index already finds them. Kept so that both stores count the same migrations.
SELECT 1;
