# Dockerfile: the provisioner binary in a small non-root image.
# Build context is the workspace root (see .dockerignore); BuildKit (default since Docker 23) is
# needed for the cache mounts, which keep the crate registry and target dir between builds.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# The target dir is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p services --bin provisioner \
    && install -m 0755 target/release/provisioner /usr/local/bin/provisioner

FROM debian:bookworm-slim
# ca-certificates: outbound TLS (OAuth providers, managed Postgres/NATS).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin provisioner
COPY --from=builder /usr/local/bin/provisioner /usr/local/bin/provisioner
USER 10001:10001
ENV PROVISIONER_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["provisioner"]
# serve applies pending migrations before it listens.
CMD ["serve"]
