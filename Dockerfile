# The pipeline image of both Promises: `host-runner` alone, statically linked, running as a non-root user.
#   docker build -t foundry-kratix/host-runner:0.1.0 .
#   kind load docker-image foundry-kratix/host-runner:0.1.0
FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-unknown-unknown x86_64-unknown-linux-musl \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The build script compiles the policy module to wasm32 and embeds it (precompiled) in the binary.
RUN cargo build --locked --release --package host-runner --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/host-runner /host-runner

FROM scratch
COPY --from=build /host-runner /host-runner
USER 65532:65532
ENTRYPOINT ["/host-runner"]
