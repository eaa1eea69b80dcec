-- PostgreSQL's 0023 announces new positions to other processes by a trigger; one process
-- writes an SQLite file, so there is nobody to tell. Kept so that both stores count the same
-- migrations.
SELECT 1;
