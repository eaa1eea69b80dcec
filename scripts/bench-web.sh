#!/bin/sh
# The web app's speeds in Debian's Chromium (tests/browser/bench.py) against a release build
# on a fresh store filled by `exact demo`, plus more slides for Q/E and 200 annotations for
# the verification page. Numbers go to BENCHMARKS.md.
#
#   scripts/bench-web.sh [ROUNDS]     default 10
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-10}
work=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release --locked -q -p exact-api --bin exact -p exact-tiles --bin exact-slide-fixture
venv=target/bench-web-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q playwright==1.65.2; }

target/release/exact demo --data-dir "$work/data" >/dev/null
target/release/exact serve --bind 127.0.0.1:0 --data-dir "$work/data" > "$work/out" 2>"$work/err" &
server=$!
while ! grep -q "listening on" "$work/out" 2>/dev/null; do sleep 0.2; done
url=$(sed -n 's/^exact listening on //p' "$work/out" | head -n 1)
api="$url/api/v1"

# Two more slides in the demo set (image ids 2 and 3, after the demo's slide), and 200 boxes on
# the first for the verification page.
# (Different sizes: the same bytes twice would be refused as a duplicate.)
for n in 2 3; do
    target/release/exact-slide-fixture aperio "${n}0000" 20000 "$work/slide-$n.svs" >/dev/null
    curl -sf -u exact:exact -F image_set=1 -F "file_path=@$work/slide-$n.svs" "$api/images/images/" >/dev/null
done
python3 - "$api" <<'PY'
import base64, json, sys, urllib.request
api = sys.argv[1]
boxes = [{"image": 1, "annotation_type": 1,
          "vector": {"x1": 300 + (i % 20) * 350, "y1": 300 + (i // 20) * 500,
                     "x2": 500 + (i % 20) * 350, "y2": 450 + (i // 20) * 500}} for i in range(200)]
request = urllib.request.Request(api + "/annotations/annotations/", data=json.dumps(boxes).encode(),
    headers={"Content-Type": "application/json",
             "Authorization": "Basic " + base64.b64encode(b"exact:exact").decode()})
urllib.request.urlopen(request).read()
PY
"$venv/bin/python" tests/browser/bench.py "$url" 1,2,3 "$rounds"
