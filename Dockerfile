# syntax=docker/dockerfile:1
#
# agent-host for Amazon Bedrock AgentCore Runtime. AgentCore runs linux/arm64; amd64 builds too.
#
#   docker buildx build --platform linux/arm64 -t agent-host:arm64 .
#
# Stages: `build` compiles the host and every plugin (host/build.rs builds the plugins for
# wasm32-wasip2); the final stage holds the binary, the plugins precompiled for the image's own
# architecture, a default configuration, tini as PID 1, git and the toolchains asked for.
# The steps, and how to check the image without an engine, are in docs/image.md.

ARG DEBIAN=trixie
ARG RUST_VERSION=1.95
# Set by buildx from --platform (linux/arm64 → arm64).
ARG TARGETARCH

FROM rust:${RUST_VERSION}-${DEBIAN} AS build
WORKDIR /src
RUN rustup target add wasm32-wasip2
# Every workspace member's manifest must be there for cargo to read the workspace.
COPY Cargo.toml Cargo.lock ./
COPY wit wit
COPY plugins plugins
COPY host host
COPY updates updates
COPY relay relay
COPY tests tests
# The image's binary carries no debug info (the workspace's line tables alone are ~230 MB).
# Fat LTO in one codegen unit, for size: 36.7 MB binary instead of 43.7 MB (measured, docs/image.md).
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true \
    CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
RUN cargo build --release --locked -p agent-host --bin agent-host \
    && mkdir -p /out \
    && cp target/release/agent-host /out/agent-host \
    && cp -r target/plugins/builtin /out/plugins

# The CPU features plugin code is compiled for, pinned per architecture so the machine the image
# runs on finds the precompiled code in the cache instead of compiling for seconds at start:
# arm64's baseline (every Graviton), amd64's x86-64-v2 (SSE4.2, POPCNT: every x86-64 server
# since 2009).
FROM debian:${DEBIAN}-slim AS runtime-arm64
ENV AGENT_HOST_PLUGIN_CPU_FEATURES=baseline
FROM debian:${DEBIAN}-slim AS runtime-amd64
ENV AGENT_HOST_PLUGIN_CPU_FEATURES=has_sse3,has_ssse3,has_sse41,has_sse42,has_popcnt,has_cmpxchg16b

# hadolint ignore=DL3006
FROM runtime-${TARGETARCH}
# Toolchains for the agent's commands besides git, as Debian packages
# (e.g. --build-arg TOOLCHAINS="python3 make gcc nodejs npm").
ARG TOOLCHAINS=""
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git tini ${TOOLCHAINS} \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /out/agent-host /usr/local/bin/agent-host
COPY --from=build /out/plugins /usr/local/lib/agent-host/plugins
COPY image/agent-host.toml /etc/agent-host/agent-host.toml

# cargo's build outputs go to the microVM's disk, not the 1 GB session storage.
ENV CARGO_TARGET_DIR=/var/tmp/agent-build/target
# Compiled once, here, read-only from then on (under /var/lib: commands cannot read it).
RUN agent-host --config /etc/agent-host/agent-host.toml plugin precompile \
    && chmod -R a-w /var/lib/agent-host/plugin-cache /usr/local/lib/agent-host \
    && mkdir -p /var/lib/agent-host/state /mnt/workspace /var/tmp/agent-build

# The host runs as root (uid 0) inside the session's microVM: the confinement of commands
# needs it (the cgroup BPF program that blocks the credential endpoints, the pids cgroup that
# contains fork bombs); every command still starts with all capabilities dropped,
# no_new_privs, seccomp and Landlock. See docs/image.md.
# hadolint ignore=DL3002
USER 0
EXPOSE 8080
# tini is PID 1: it reaps orphans and passes SIGTERM on to the host.
ENTRYPOINT ["/usr/bin/tini", "--", "agent-host", "--config", "/etc/agent-host/agent-host.toml"]
CMD ["serve", "--port", "8080"]
