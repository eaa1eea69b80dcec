#!/bin/sh
# Fifty annotators for a minute on SQLite and on PostgreSQL (its defaults, fsync on), then the
# books: tests/http-bench/annotators.py checks every acknowledged write through the API; then,
# with the server stopped, `exact store verify` checks the chain and a rebuild of a copy of the
# store must equal the live read models, table by table (scripts/compare-read-models.py).
# BENCH_ANNOTATORS (default 50), BENCH_SECONDS (default 60), BENCH_ONLY (sqlite or postgres).
set -eu
cd "$(dirname "$0")/.."

work="${EXACT_BENCH_DIR:-/tmp/exact-load-bench}"
annotators="${BENCH_ANNOTATORS:-50}"
seconds="${BENCH_SECONDS:-60}"
exact="${EXACT_BIN:-target/release/exact}"
[ -n "${EXACT_BIN:-}" ] || cargo build --release --locked -q -p exact-api --bin exact
mkdir -p "$work"

run_backend() {
    backend="$1"
    database_url="$2"
    data="$work/data-$backend"
    rm -rf "$data" && mkdir -p "$data"
    set -- --data-dir "$data"
    [ -n "$database_url" ] && set -- "$@" --database-url "$database_url"
    EXACT_ADMIN_PASSWORD=bench-password EXACT_LOG=warn "$exact" serve --bind 127.0.0.1:0 "$@" \
        >"$work/server-$backend.out" 2>"$work/server-$backend.err" &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        grep -q "listening on" "$work/server-$backend.out" 2>/dev/null && break
        sleep 0.1
    done
    url=$(sed -n 's/^exact listening on //p' "$work/server-$backend.out")
    echo "== $backend: $annotators annotators for $seconds s"
    status=0
    python3 tests/http-bench/annotators.py "$url" --annotators "$annotators" --seconds "$seconds" || status=1
    kill -TERM "$server"
    wait "$server" || status=1
    trap - EXIT
    "$exact" store verify "$@" || status=1
    if [ -z "$database_url" ]; then
        rm -rf "$work/rebuilt-sqlite" && mkdir -p "$work/rebuilt-sqlite"
        cp "$data/exact.db" "$work/rebuilt-sqlite/exact.db"
        "$exact" replay rebuild --data-dir "$work/rebuilt-sqlite" >/dev/null
        python3 scripts/compare-read-models.py "sqlite:$data/exact.db" "sqlite:$work/rebuilt-sqlite/exact.db" || status=1
    else
        copy="${database_url%/*}/exact_load_rebuilt"
        psql "$database_url" -q -c "DROP DATABASE IF EXISTS exact_load_rebuilt" \
            -c "CREATE DATABASE exact_load_rebuilt TEMPLATE ${database_url##*/}"
        "$exact" replay rebuild --data-dir "$data" --database-url "$copy" >/dev/null
        python3 scripts/compare-read-models.py "postgres:$database_url" "postgres:$copy" || status=1
    fi
    return $status
}

case "${BENCH_ONLY:-both}" in
    postgres) run_backend postgres "$BENCH_BACKEND_URL" ;;
    sqlite) run_backend sqlite "" ;;
    *)
        run_backend sqlite ""
        scripts/with-postgres.sh sh -c '
            psql "$EXACT_TEST_DATABASE_URL" -q -c "CREATE DATABASE exact_load" &&
            BENCH_BACKEND_URL="${EXACT_TEST_DATABASE_URL%/*}/exact_load" BENCH_ONLY=postgres \
            sh scripts/bench-load.sh'
        ;;
esac
