# Multi-stage build: compile in the Rust image, run in a slim Debian as a non-root user.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# migrations are embedded at compile time; tests and benches are declared targets of the manifest
COPY migrations ./migrations
COPY assets ./assets
COPY tests ./tests
COPY benches ./benches
RUN cargo build --release --locked --bin catraca

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/catraca --create-home catraca
COPY --from=build /src/target/release/catraca /usr/local/bin/catraca
COPY conf /etc/catraca
USER catraca
WORKDIR /var/lib/catraca
ENV CATRACA_CONFIG=/etc/catraca/catraca.yaml \
    CATRACA_LISTEN=0.0.0.0:8080 \
    CATRACA_METRICS_LISTEN=0.0.0.0:9090
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=2s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["catraca"]
CMD ["serve"]
