# faultgate: one image for the sidecar (`serve`), the scenario runner (`run`)
# and its own health check (`health`).
#
#   docker build -t faultgate .
#   docker run -p 127.0.0.1:8474:8474 faultgate
#
# The build runs the project's own build command (README.md): the build
# script compiles the built-in plugins for wasm32-wasip2 and embeds them,
# precompiled, in the binary.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN rustup target add wasm32-wasip2 \
 && cargo build --release --locked \
 && strip -o /faultgate target/release/faultgate

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/faultgate faultgate
COPY --from=build /faultgate /usr/local/bin/faultgate
USER faultgate
# Listen on every interface inside the container; publish the port only
# where a person needs it.
ENV FAULTGATE_API=0.0.0.0:8474 \
    FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN=true \
    FAULTGATE_PLUGIN_CACHE=/var/lib/faultgate/cache
EXPOSE 8474
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["faultgate", "health"]
ENTRYPOINT ["faultgate"]
CMD ["serve"]
