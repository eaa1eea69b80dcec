#!/usr/bin/env python3
"""Compares the read models of two Exact stores table by table, every row and column.

    compare-read-models.py sqlite:PATH|postgres:URL sqlite:PATH|postgres:URL

For a live store and a copy rebuilt from its log (scripts/bench-load.sh). The log itself, the
counters, the projections' checkpoints, the migrations and the sessions are not read models;
an R*Tree's shadow tables are its own business (the R*Tree is compared). Prints what differs
(the first rows of each table) and exits 1 if anything does. Standard library and psql only.
"""

import sqlite3
import subprocess
import sys

NOT_READ_MODELS = {"events", "id_counters", "projection_checkpoints", "_sqlx_migrations",
                   "tower_sessions", "sqlite_sequence"}
SHADOW = ("_node", "_parent", "_rowid")


def sqlite_tables(path):
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = [r[0] for r in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    tables = {}
    for name in names:
        if name in NOT_READ_MODELS or name.endswith(SHADOW):
            continue
        rows = connection.execute(f'SELECT * FROM "{name}"').fetchall()
        tables[name] = sorted(repr(row) for row in rows)
    return tables


def postgres_tables(url):
    def psql(sql):
        return subprocess.run(["psql", url, "-At", "-c", sql], check=True,
                              capture_output=True, text=True).stdout.splitlines()
    tables = {}
    for name in psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):
        if name in NOT_READ_MODELS:
            continue
        tables[name] = sorted(psql(f'SELECT t::text FROM "{name}" t'))
    return tables


def tables_of(spec):
    kind, _, where = spec.partition(":")
    return sqlite_tables(where) if kind == "sqlite" else postgres_tables(where)


def main():
    live, rebuilt = tables_of(sys.argv[1]), tables_of(sys.argv[2])
    differences = 0
    for name in sorted(set(live) | set(rebuilt)):
        a, b = live.get(name), rebuilt.get(name)
        if a == b:
            continue
        differences += 1
        if a is None or b is None:
            print(f"{name}: only in the {'rebuilt' if a is None else 'live'} store")
            continue
        only_live = sorted(set(a) - set(b))[:3]
        only_rebuilt = sorted(set(b) - set(a))[:3]
        print(f"{name}: {len(a)} rows live, {len(b)} rebuilt; live only: {only_live}; rebuilt only: {only_rebuilt}")
    rows = sum(len(r) for r in live.values())
    if differences:
        print(f"read models differ in {differences} tables")
        sys.exit(1)
    print(f"read models equal: {len(live)} tables, {rows} rows")


if __name__ == "__main__":
    main()
