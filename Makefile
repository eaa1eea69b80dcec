# Exact: the two commands of the README, and the tools behind them.
#   make run     install what is missing, build in release mode, serve on http://127.0.0.1:8000
#   make test    install what is missing, then run every test, PostgreSQL ones included
#   make bench   the store and read-model benchmarks on SQLite and PostgreSQL (BENCHMARKS.md)
#   make bench-tiles  exact tiles against OpenSlide's Python tile server (BENCHMARKS.md)
#   make bench-http   the REST API under wrk on SQLite and PostgreSQL (BENCHMARKS.md)
#   make bench-web    the web app's speeds in Chromium: viewer open, Q/E, verification (BENCHMARKS.md)
#   make bench-load   50 annotators for a minute on SQLite and PostgreSQL, then the books (BENCHMARKS.md)
#   make fuzz    cargo-fuzz on the parsers of user bytes, FUZZ_SECONDS each (nightly toolchain)
#   make lint    rustfmt, clippy and the browser modules' type check, as before every submission

BIND ?= 127.0.0.1:8000
DATA_DIR ?= ./exact-data

.PHONY: run test bench bench-tiles bench-http bench-web bench-load fuzz lint setup-run setup-test setup-lint

run: setup-run
	cargo build --release --locked --bin exact
	./target/release/exact serve --bind $(BIND) --data-dir $(DATA_DIR)

test: setup-test
	PG_OPTIONS="-o fsync=off" scripts/with-postgres.sh cargo test --workspace --locked

bench: setup-test
	scripts/with-postgres.sh sh -c 'cargo bench --locked -p exact-store --bench store && cargo bench --locked -p exact-api --bench annotations'

bench-tiles: setup-run
	scripts/bench-tiles.sh

bench-http: setup-test
	scripts/bench-http.sh

bench-web: setup-test
	scripts/bench-web.sh

bench-load: setup-test
	scripts/bench-load.sh

fuzz: setup-test
	scripts/fuzz.sh

lint: setup-lint
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cd web && npm ci --silent && ./node_modules/.bin/tsc -p .

setup-run:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

setup-lint:
	@scripts/setup.sh lint
