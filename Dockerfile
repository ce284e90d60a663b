# One image with both services: `gateway` (the entrypoint) and `room-service`
# (run it with `command: ["room-service"]`), and `switchboard-loadtest` (the chart's
# `helm test` runs its smoke check). docs/deployment.md, "Image".
#
#   docker build -t switchboard:0.1.0 .
#
# Build stage: the whole workspace, release profile, only the three binaries (the test
# harness and its WebRTC peer are dev-dependencies and are not built). No protoc is
# needed: the gRPC code is generated with protox.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gateway -p room-service -p loadtest \
    && mkdir -p /out \
    && cp target/release/gateway target/release/room-service target/release/switchboard-loadtest /out/

# Runtime: glibc and CA certificates, no shell, no package manager; runs as the
# distroless `nonroot` user (65532). The services write nothing to disk, so the root
# filesystem can be mounted read-only.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/gateway /out/room-service /out/switchboard-loadtest /usr/local/bin/
# In a container the services must listen on every interface (their defaults are
# loopback, for a laptop). Configuration beyond this comes from the environment or a
# mounted file (docs/configuration.md).
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    GATEWAY_TELEMETRY__ADMIN_LISTEN=0.0.0.0:9080 \
    ROOM_SERVICE_LISTEN=0.0.0.0:7070 \
    ROOM_SERVICE_TELEMETRY__ADMIN_LISTEN=0.0.0.0:9070 \
    GATEWAY_LOG_JSON=true \
    ROOM_SERVICE_LOG_JSON=true
USER 65532:65532
# Gateway: WebSockets and probes, admin (metrics). Room service: gRPC, admin.
EXPOSE 8080 9080 7070 9070
ENTRYPOINT ["/usr/local/bin/gateway"]
