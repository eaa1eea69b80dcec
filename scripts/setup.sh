#!/bin/sh
# Installs what building and testing Exact needs and is missing, on Debian or Ubuntu.
#   scripts/setup.sh run    what `make run` needs: a C toolchain, pkg-config, OpenSlide, libclang
#   scripts/setup.sh test   that, plus PostgreSQL (pg_virtualenv), python3 and Debian's Chromium
#                           for the tests (the browser tests drive it with the Python playwright
#                           package, which the test installs into a venv; no browser download)
#   scripts/setup.sh lint   that of run, plus Node.js and npm for the type check of web/static
# apt-get runs only when something is missing, as root or through sudo.
set -eu

need="build-essential pkg-config libopenslide-dev libclang-dev"
if [ "${1:-run}" = test ]; then
    need="$need postgresql postgresql-common python3 python3-venv chromium"
fi
if [ "${1:-run}" = lint ]; then
    # Any Node.js 18 or later runs TypeScript; one that is there already (nvm, NodeSource) will do.
    if ! command -v npm >/dev/null 2>&1; then
        need="$need nodejs npm"
    fi
fi

missing=""
for package in $need; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "setup: missing packages:$missing; install them as root (apt-get install$missing)" >&2
        exit 1
    fi
    echo "setup: installing$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        echo "setup: cargo is in ~/.cargo/bin; add it to PATH (. \"\$HOME/.cargo/env\")" >&2
    else
        echo "setup: Rust is missing; install it with rustup (https://rustup.rs), then run make again" >&2
    fi
    exit 1
fi
