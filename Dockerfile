# faultgate: one image for the sidecar (`serve`), the scenario runner (`run`)
# and its own health check (`health`).
#
#   docker build -t faultgate .
#   docker run -p 127.0.0.1:8474:8474 faultgate
#
# The build runs the project's own build command (README.md): the build
# script compiles the built-in plugins for wasm32-wasip2 and embeds them,
# precompiled, in the binary.
#
# It is also a drop-in for Toxiproxy's image: Toxiproxy's server flags work
# in place of `serve` (`docker run faultgate -host=0.0.0.0 -config=/x.json`).
#
# PREBUILT (for faultgate's own test suite, which has just built the binary
# on a Debian bookworm host): the path, in the build context, of a faultgate
# binary to put in the image instead of building one. Everything else is the
# same image.
#
# The build stage deletes its target directory and crate sources in the step
# that made them (about 5 GB), so that neither stays on the engine's disk as
# a layer once the binary is out.

FROM rust:1.95-bookworm AS build
ARG PREBUILT=
WORKDIR /src
COPY . .
RUN if [ -n "$PREBUILT" ]; then \
      strip -o /faultgate "$PREBUILT"; \
    else \
      rustup target add wasm32-wasip2 \
      && cargo build --release --locked \
      && strip -o /faultgate target/release/faultgate \
      && rm -rf target "$CARGO_HOME/registry"; \
    fi \
 && /faultgate --version

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/faultgate faultgate \
 && install -d -o faultgate -g faultgate -m 700 /var/lib/faultgate/cache
# The system's CA certificates, which slim images lack: `upstream_tls` and
# `faultgate run`'s https steps check servers against them by default.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /faultgate /usr/local/bin/faultgate
USER faultgate
# The control API listens on every interface inside the container; publish
# its port only where a person needs it (-p 127.0.0.1:8474:8474).
#
# Proxies created through the API listen where their request says, and
# Toxiproxy's clients (Testcontainers among them) ask for 0.0.0.0:8666 and
# up: the image allows proxies on non-loopback addresses
# (FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN), which faultgate refuses by default.
#
# The compile cache (for --plugin files; the built-ins come precompiled) is
# a directory the image's user owns, so a volume mounted there
# (-v faultgate-cache:/var/lib/faultgate/cache) keeps it between containers.
#
# The shutdown grace is shorter than `docker stop`'s 10 s, so that open
# connections get their time and faultgate still exits 0 by itself instead of
# being killed.
ENV FAULTGATE_API=0.0.0.0:8474 \
    FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN=true \
    FAULTGATE_PLUGIN_CACHE=/var/lib/faultgate/cache \
    FAULTGATE_SHUTDOWN_GRACE=5s
EXPOSE 8474
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["faultgate", "health"]
ENTRYPOINT ["faultgate"]
CMD ["serve"]
