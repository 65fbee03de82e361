# syntax=docker/dockerfile:1
# smdpp-mock: a mock GSMA SGP.22 SM-DP+ speaking ES2+ over mutual TLS, and ES9+ for LPAs.
#
#   docker build -t smdpp-mock .
#   docker run --rm -p 6443:6443 -p 6444:6444 -p 6445:6445 -p 127.0.0.1:8080:8080 -v smdpp-certs:/certs smdpp-mock
#
# Ports: 6443 ES2+ and the platform API (mutual TLS), 6444 ES9+ for LPAs (server-only TLS),
# 6445 the SM-DS (ES11, ES12), 8080 the admin API, /health and /metrics (plain HTTP).
#
# Every setting comes from an SMDPP_* environment variable (each is also a command-line flag,
# see `smdpp-mock --help` and docs/configuration.md). The image sets
# SMDPP_LISTEN, SMDPP_ES9_LISTEN, SMDPP_SMDS_LISTEN and SMDPP_ADMIN_LISTEN (every interface,
# the ports above),
# SMDPP_CERTS_DIR=/certs and SMDPP_LOG_FORMAT=json. The ones you are likely to set:
#   SMDPP_SAN                     extra SANs of the server certificates, comma-separated
#                                 (e.g. the host name clients use: SMDPP_SAN=smdpp)
#   SMDPP_SCENARIO                scenario files or directories, comma-separated; unset runs the
#                                 built-in default scenario. Mount yours at /scenarios and set
#                                 SMDPP_SCENARIO=/scenarios (every *.yaml in it, merged by name)
#                                 or SMDPP_SCENARIO=/scenarios/my.yaml
#   SMDPP_ADMIN_TOKEN             the admin API's bearer token (below)
#   SMDPP_JOURNAL_SIZE, SMDPP_MAX_BODY_BYTES, SMDPP_HANDSHAKE_TIMEOUT_SECS, RUST_LOG
#
# The test PKI (CA, server certificate, one client certificate per operator, and the
# GSMA-style PKI of ES9+ in /certs/gsma) is written to /certs on first start and reused
# afterwards: keep it in a volume and give clients /certs/ca.pem and
# /certs/<operator-id>.pem + .key (keys are mode 0600, owned by uid 65532).
#
# The admin API (port 8080) is plain HTTP. It listens on every interface of the container, so it
# always requires a bearer token: SMDPP_ADMIN_TOKEN when set, otherwise one the mock makes on
# first start and keeps in /certs/admin-token (the log names the file, not the token). Only
# /health, /ready, /openapi.json and the dashboard's static files answer without it. Publish the
# port on loopback only all the same.

# ---- build ----------------------------------------------------------------------------------
# The slim image already has gcc and libc6-dev, all that ring needs.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build
COPY . .
# The crate registry and target/ live in BuildKit cache mounts: a rebuild after a source change
# recompiles only the crate, and no placeholder sources are needed (an explicit [[example]] or
# [[bin]] in Cargo.toml would break a placeholder build). target/ is not part of the image, so
# the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git/db,sharing=locked \
    --mount=type=cache,id=smdpp-mock-target,target=/build/target,sharing=locked \
    cargo build --release --locked \
    && cp target/release/smdpp-mock /usr/local/bin/smdpp-mock \
    && mkdir -p /rootfs/certs /rootfs/scenarios \
    && chmod 0755 /rootfs/certs /rootfs/scenarios

# ---- run ------------------------------------------------------------------------------------
# Distroless with glibc and libgcc (what a Rust binary links), no shell, user nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot

# The repository URL: docker build --build-arg SOURCE_URL=https://… .
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="smdpp-mock" \
      org.opencontainers.image.description="A mock GSMA SGP.22 SM-DP+ speaking ES2+ over mutual TLS, driven by YAML scenarios" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}"

COPY --from=builder /usr/local/bin/smdpp-mock /usr/local/bin/smdpp-mock
# Empty /certs and /scenarios owned by the runtime user (distroless has no mkdir): a named volume
# mounted there starts with this ownership, so the mock can write its PKI.
COPY --from=builder --chown=65532:65532 /rootfs/ /

# The admin API listens on every interface of the container, so it always requires a token:
# SMDPP_ADMIN_TOKEN when set, otherwise one the mock makes on first start and keeps in
# /certs/admin-token. /health and /ready (health checks), /openapi.json and the dashboard's
# static files stay open.
ENV SMDPP_LISTEN=0.0.0.0:6443 \
    SMDPP_ES9_LISTEN=0.0.0.0:6444 \
    SMDPP_SMDS_LISTEN=0.0.0.0:6445 \
    SMDPP_ADMIN_LISTEN=0.0.0.0:8080 \
    SMDPP_CERTS_DIR=/certs \
    SMDPP_LOG_FORMAT=json

VOLUME ["/certs", "/scenarios"]
# 6443: ES2+ and the platform API (mutual TLS). 6444: ES9+ for LPAs (server-only TLS).
# 6445: the SM-DS (ES11 for LPAs, ES12 for SM-DP+s). 8080: admin API, /health, /metrics
# (plain HTTP, bearer token).
EXPOSE 6443 6444 6445 8080
USER 65532:65532
WORKDIR /

# `smdpp-mock health` GETs /health on SMDPP_ADMIN_LISTEN (0.0.0.0 means 127.0.0.1) and exits 0
# on 200 {"status":"ok"}, 1 otherwise.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/smdpp-mock", "health"]

ENTRYPOINT ["/usr/local/bin/smdpp-mock"]
CMD ["serve"]
