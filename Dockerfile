# The `exact` binary with OpenSlide, on Debian 12: a build stage and a small runtime stage.
#   docker build -t exact .
#   docker run -p 8000:8000 -v exact-data:/var/lib/exact exact      # SQLite in the volume
# deploy/compose.yaml runs it with PostgreSQL, two API processes behind nginx and a tile server.
# api/tests/deployment.rs runs this file's command with its environment (and those of the compose
# file and the systemd unit) without containers, in `make test`, so that they cannot rot.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenslide-dev libclang-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin exact \
 && install -m 0755 target/release/exact /usr/local/bin/exact

FROM debian:bookworm-slim
# libopenslide0 holds libopenslide.so.0, the one library of the binary beyond the C library.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenslide0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/exact --create-home exact
COPY --from=build /usr/local/bin/exact /usr/local/bin/exact
USER exact
ENV EXACT_BIND=0.0.0.0:8000
ENV EXACT_DATA_DIR=/var/lib/exact
ENV EXACT_LOG=info,sqlx=warn
VOLUME /var/lib/exact
EXPOSE 8000
CMD ["exact", "serve"]
