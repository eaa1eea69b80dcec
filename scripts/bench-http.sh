#!/bin/sh
# The REST API under load, on SQLite and on PostgreSQL (its defaults, fsync on):
#   1. a generated 50,000 x 40,000 Aperio slide is uploaded and 1,000,000 annotations are
#      created on it over HTTP, in POSTed lists of 5,000 (tests/http-bench/load.py);
#   2. viewport lists (2,000 x 2,000 px at random places, ~2,000 rows each) with wrk, 1 and 8
#      connections (tests/http-bench/viewport.lua);
#   3. single-annotation POSTs with wrk, 16 connections (tests/http-bench/create.lua).
# EXACT_BENCH_DIR (default /tmp/exact-http-bench) keeps the slide between runs;
# BENCH_ANNOTATIONS (default 1000000) and BENCH_SECONDS (default 15) size the run; BENCH_ONLY
# (sqlite or postgres) runs one backend.
set -eu
cd "$(dirname "$0")/.."

work="${EXACT_BENCH_DIR:-/tmp/exact-http-bench}"
count="${BENCH_ANNOTATIONS:-1000000}"
seconds="${BENCH_SECONDS:-15}"
mkdir -p "$work"
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq wrk; else sudo apt-get install -y -qq wrk; fi
fi

# EXACT_BIN runs another build of the server (an A/B against an older one); by default the
# release build of this checkout.
exact="${EXACT_BIN:-target/release/exact}"
if [ -z "${EXACT_BIN:-}" ]; then
    cargo build --release --locked -q -p exact-api --bin exact -p exact-tiles --bin exact-slide-fixture
else
    cargo build --release --locked -q -p exact-tiles --bin exact-slide-fixture
fi
slide="$work/slide-50000x40000.svs"
[ -f "$slide" ] || target/release/exact-slide-fixture aperio 50000 40000 "$slide"

run_backend() {
    backend="$1"
    database_url="$2"
    data="$work/data-$backend"
    rm -rf "$data" && mkdir -p "$data"
    set -- serve --bind 127.0.0.1:0 --data-dir "$data"
    [ -n "$database_url" ] && set -- "$@" --database-url "$database_url"
    EXACT_ADMIN_PASSWORD=bench-password EXACT_LOG=warn "$exact" "$@" >"$work/server-$backend.out" 2>"$work/server-$backend.err" &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        grep -q "listening on" "$work/server-$backend.out" 2>/dev/null && break
        sleep 0.1
    done
    url=$(sed -n 's/^exact listening on //p' "$work/server-$backend.out")
    loaded=$(python3 tests/http-bench/load.py "$url" "$slide" "$count")
    image=$(echo "$loaded" | python3 -c 'import json,sys; print(json.load(sys.stdin)["image"])')
    type_id=$(echo "$loaded" | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')
    echo "$backend: $loaded"
    # PostgreSQL's planner statistics as autovacuum leaves them within a minute of a bulk load:
    # measured at once after a 90 s load, the viewport measured a stale row estimate (p50
    # 17.8 or 39.4 ms by the luck of autovacuum's timing, 16.4 ms after ANALYZE).
    [ -n "$database_url" ] && psql "$database_url" -q -c ANALYZE
    for connections in 1 8; do
        threads=$([ "$connections" -gt 1 ] && echo 2 || echo 1)
        printf '%s viewport, %s connection(s): ' "$backend" "$connections"
        wrk -t"$threads" -c"$connections" -d"${seconds}s" -s tests/http-bench/viewport.lua "$url" \
            -- "$image" 50000 40000 | grep RESULT
    done
    printf '%s single POST, 16 connections: ' "$backend"
    wrk -t2 -c16 -d"${seconds}s" -s tests/http-bench/create.lua "$url" \
        -- "$image" "$type_id" 50000 40000 | grep RESULT
    kill "$server"
    wait "$server" 2>/dev/null || true
    trap - EXIT
}

case "${BENCH_ONLY:-both}" in
    postgres) run_backend postgres "$BENCH_BACKEND_URL" ;;
    sqlite) run_backend sqlite "" ;;
    *)
        run_backend sqlite ""
        # Inside a throwaway cluster (PostgreSQL's defaults: fsync on).
        scripts/with-postgres.sh sh -c '
            psql "$EXACT_TEST_DATABASE_URL" -q -c "CREATE DATABASE exact_http_bench" &&
            BENCH_BACKEND_URL="${EXACT_TEST_DATABASE_URL%/*}/exact_http_bench" BENCH_ONLY=postgres \
            sh scripts/bench-http.sh'
        ;;
esac
