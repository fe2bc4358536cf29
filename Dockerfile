# syntax=docker/dockerfile:1
#
# tracehop container image: Debian 12, two stages.
#
#   docker build -t tracehop:0.1.0 .
#   docker run --rm -p 8000:8000 -p 9901:9901 \
#       -e TRACEHOP_UPSTREAM=http://host.docker.internal:8080 tracehop:0.1.0
#
# Configuration comes from the environment (TRACEHOP_UPSTREAM, TRACEHOP_SERVICE_NAME, ...; see
# docs/configuration.md) or from a file mounted at /etc/tracehop/tracehop.json and named by
# TRACEHOP_CONFIG or `--config`. The access log goes to stdout, diagnostics to stderr.
#
# The build stage runs packaging/container-build.sh, which tests/check-packaging also runs in CI
# (which has no container engine), together with a check that every shared library the binary
# needs comes from a package installed by the runtime stage below: it reads both stages'
# `apt-get install` lists from this file, so keep them in plain `apt-get install` commands.

# --- build -----------------------------------------------------------------------------------
FROM debian:12 AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc \
        libc6-dev \
        meson \
        ninja-build \
        pkg-config \
        libmicrohttpd-dev \
        libcurl4-openssl-dev \
        libjansson-dev \
        zlib1g-dev \
        libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# meson install also puts the example config in /usr/share/doc/tracehop/examples/.
RUN packaging/container-build.sh /src /build /out

# --- runtime ---------------------------------------------------------------------------------
FROM debian:12-slim AS runtime

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libmicrohttpd12 \
        libcurl4 \
        libjansson4 \
        zlib1g \
        libsystemd0 \
        ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tracehop \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin tracehop

COPY --from=build /out/ /

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001

# The admin listener (/healthz, /readyz, /metrics) must be reachable from outside the container:
# the kubelet's probes and Prometheus connect to the pod IP, never to its loopback. The endpoints
# are read-only. Listen 0.0.0.0:8000 and the access log on stdout are tracehop's defaults.
# Environment wins over a config file: set TRACEHOP_ADMIN_LISTEN to change this with a file too.
ENV TRACEHOP_ADMIN_LISTEN=0.0.0.0:9901

EXPOSE 8000 9901

# tracehop is PID 1 and handles its signals itself: SIGTERM drains (readiness fails at once,
# limits.drain_delay_ms of serving, then up to limits.drain_timeout_ms for in-flight requests).
# `docker stop` waits 10 s by default; give it `--time 30` (or stop_grace_period: 30s).
STOPSIGNAL SIGTERM

# The slim image has no curl: bash's /dev/tcp speaks just enough HTTP to ask /readyz on the
# admin port taken from TRACEHOP_ADMIN_LISTEN. With the admin listener off, build a derived image
# with HEALTHCHECK NONE.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${TRACEHOP_ADMIN_LISTEN##*:}\" && printf 'GET /readyz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r -t 2 _ status _ <&3 && [[ $status == 200 ]]"]

ENTRYPOINT ["/usr/bin/tracehop"]
