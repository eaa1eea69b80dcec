#!/bin/sh
# Fuzzes the parsers that take user bytes (fuzz/fuzz_targets) with cargo-fuzz on the nightly
# toolchain, FUZZ_SECONDS each (60 unless told). Not part of `make test`: its bounded cousins
# are the proptest cases of api/tests/hostile.rs. A crash leaves its input in
# fuzz/artifacts/TARGET/; make it a regression test, then fix it.
set -eu
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "make fuzz needs a nightly Rust toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
seconds="${FUZZ_SECONDS:-60}"
cd fuzz
for target in vector zip_extract names_and_params; do
    mkdir -p "corpus/$target"
    echo "== $target for ${seconds}s"
    cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1
done
