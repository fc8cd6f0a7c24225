# syntax=docker/dockerfile:1
# popdns container image: a Rust build stage and a small Debian runtime stage
# holding only the binary, the compose demo configuration, the zones and the
# shipped GeoIP database. It runs as the unprivileged user `popdns`.
#
#   docker compose up -d --build      # the demo: docker-compose.yml, docs/compose.md
#
# The baked-in config is deploy/compose/popdns.toml: it needs the admin token
# at /run/secrets/popdns-admin-token (a compose secret) and probes the compose
# services pop-fra/iad/sin. For your own deployment mount your config over
# /etc/popdns (or pass `serve --config PATH`) and your zones, e.g.
#   docker run -v /srv/popdns:/etc/popdns:ro -v popdns-state:/var/lib/popdns \
#     -p 53:5353/udp -p 53:5353/tcp popdns
#
# The DNS port inside the container is 5353, so no capability is needed. To
# serve port 53 publish it: `-p 53:5353/udp -p 53:5353/tcp`.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Only what `cargo build -p popdns` reads: the workspace manifests, the crates,
# the tests crate (a workspace member) and the two CSV files compiled in.
COPY Cargo.toml Cargo.lock ./
COPY crates/ crates/
COPY tests/ tests/
COPY geoip/country-coords.csv geoip/test-city.csv geoip/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p popdns \
 && install -m 0755 target/release/popdns /usr/local/bin/popdns \
 && /usr/local/bin/popdns --version

FROM ${RUNTIME_IMAGE} AS runtime
RUN groupadd --system --gid 10053 popdns \
 && useradd --system --uid 10053 --gid popdns --home-dir /var/lib/popdns \
        --no-create-home --shell /usr/sbin/nologin popdns \
 && install -d -o popdns -g popdns -m 0750 /var/lib/popdns
COPY --from=build /usr/local/bin/popdns /usr/local/bin/popdns
# /etc/popdns mirrors the repository layout the config expects
# (tests/tests/deploy.rs rebuilds this layout from these COPY lines).
COPY deploy/compose/popdns.toml /etc/popdns/popdns.toml
COPY zones/ /etc/popdns/zones/
COPY geoip/dbip-country.mmdb geoip/NOTICE /etc/popdns/geoip/
# Fail the build if the config, zones or GeoIP database do not load
# (`check` does not read the token file, which compose mounts at run time).
RUN popdns check --config /etc/popdns/popdns.toml
USER popdns:popdns
WORKDIR /var/lib/popdns
EXPOSE 5353/udp 5353/tcp 9153/tcp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/popdns"]
CMD ["serve", "--config", "/etc/popdns/popdns.toml"]
