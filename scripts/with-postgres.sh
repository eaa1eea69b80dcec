#!/bin/sh
# Runs a command beside a throwaway PostgreSQL cluster (pg_virtualenv, from postgresql-common),
# with a superuser URL to it in EXACT_TEST_DATABASE_URL. The cluster is gone when it returns.
# PG_OPTIONS adds server settings, e.g. PG_OPTIONS="-o fsync=off" for tests.
set -eu
if [ -n "${EXACT_TEST_DATABASE_URL:-}" ]; then
    exec "$@"
fi
# shellcheck disable=SC2086
exec pg_virtualenv -o max_connections=400 ${PG_OPTIONS:-} sh -c '
    EXACT_TEST_DATABASE_URL="postgres://${PGUSER}:${PGPASSWORD}@${PGHOST:-localhost}:${PGPORT:-5432}/postgres"
    export EXACT_TEST_DATABASE_URL
    exec "$@"' sh "$@"
