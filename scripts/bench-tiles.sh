#!/bin/sh
# Tiles side by side: `exact tiles` against OpenSlide's own Python tile server
# (deepzoom_server.py from the openslide-python source package, Flask, in a throwaway venv), on
# the same generated Aperio slide, the same viewer walk (tests/tiles-bench/walk.py), the same
# load generator (wrk), with 1 and 16 clients, cold (fresh server) and warm (the walk again).
#
#   scripts/bench-tiles.sh [WIDTH HEIGHT]        default 50000 40000; numbers go to BENCHMARKS.md
#
# EXACT_BENCH_DIR (default /tmp/exact-tiles-bench) keeps the slide and the venv between runs;
# EXACT_BENCH_SECONDS (default 15) is the length of each wrk run.
set -eu
cd "$(dirname "$0")/.."
width=${1:-50000}
height=${2:-40000}
work=${EXACT_BENCH_DIR:-/tmp/exact-tiles-bench}
seconds=${EXACT_BENCH_SECONDS:-15}
token=bench-token-0123456789abcdef
mkdir -p "$work/data"

missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$missing python3-venv"
if [ -n "$missing" ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y -qq --no-install-recommends $missing
fi

cargo build --release --locked -q -p exact-api --bin exact -p exact-tiles --bin exact-slide-fixture
slide="slide-${width}x${height}.svs"
[ -f "$work/data/$slide" ] || target/release/exact-slide-fixture aperio "$width" "$height" "$work/data/$slide"

if [ ! -x "$work/venv/bin/flask" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q openslide-python==1.4.7 flask pillow
fi
server="$work/deepzoom_server.py"
if [ ! -f "$server" ]; then
    "$work/venv/bin/pip" download -q --no-deps --no-binary :all: openslide-python==1.4.7 -d "$work/sdist"
    tar -xzf "$work/sdist/openslide_python-1.4.7.tar.gz" -C "$work/sdist"
    cp -r "$work/sdist/openslide_python-1.4.7/examples/deepzoom/." "$work/"
fi

# The same walk on each server's own grid: ours keeps the slide's 240 px tiles without overlap
# (stored tiles pass through), OpenSlide's uses 254 px with 1 px overlap.
python3 tests/tiles-bench/walk.py "$width" "$height" 240 0 "/tiles/$slide" 120000 >"$work/walk-exact.txt"
python3 tests/tiles-bench/walk.py "$width" "$height" 254 1 "/slide" 120000 >"$work/walk-python.txt"
# Warm: the first 3,000 requests of the walk, primed by one unmeasured pass, so that every tile
# is in the cache when it is measured.
head -n 3000 "$work/walk-exact.txt" >"$work/warm-exact.txt"
head -n 3000 "$work/walk-python.txt" >"$work/warm-python.txt"

wait_for() {
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "$1" 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    echo "bench-tiles: $1 did not answer" >&2
    exit 1
}

# wrk's requests per second, p50 and p99 in ms, as a table row.
measure() { # label clients url walk
    threads=1; [ "$2" -gt 1 ] && threads=2
    TOKEN=$token wrk -t "$threads" -c "$2" -d "${seconds}s" --latency -s tests/tiles-bench/walk.lua "$3" -- "$4" "$threads" >"$work/wrk.out"
    awk -v label="$1" -v clients="$2" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        / Non-2xx/ { errors = $NF }
        END { printf "| %s | %d | %.0f | %.2f | %.2f | %s |\n", label, clients, rps, p50, p99, (errors ? errors " non-2xx" : "") }
    ' "$work/wrk.out"
}

# One pass over a walk, one request at a time (curl keeps the connection), unmeasured.
prime() { # url walk
    sed "s|^|$1|" "$2" | xargs -n 200 curl -s -H "Authorization: Bearer $token" >/dev/null
}

echo "| server, cache | clients | tiles/s | p50 ms | p99 ms | errors |"
echo "|---|---:|---:|---:|---:|---|"
for clients in 1 16; do
    target/release/exact tiles --data-dir "$work/data" --bind 127.0.0.1:8031 --token "$token" >/dev/null 2>&1 &
    pid=$!
    wait_for http://127.0.0.1:8031/
    measure "exact tiles, cold" "$clients" http://127.0.0.1:8031 "$work/walk-exact.txt"
    prime http://127.0.0.1:8031 "$work/warm-exact.txt"
    measure "exact tiles, warm" "$clients" http://127.0.0.1:8031 "$work/warm-exact.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true

    (cd "$work" && exec venv/bin/python deepzoom_server.py -Q 90 -p 8032 "data/$slide") >/dev/null 2>&1 &
    pid=$!
    wait_for http://127.0.0.1:8032/
    measure "deepzoom_server.py, cold" "$clients" http://127.0.0.1:8032 "$work/walk-python.txt"
    prime http://127.0.0.1:8032 "$work/warm-python.txt"
    measure "deepzoom_server.py, warm" "$clients" http://127.0.0.1:8032 "$work/warm-python.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
