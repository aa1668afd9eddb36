#!/bin/sh
# Build a local stand-in for the `python:3.11-slim` image and load it into the Docker engine at
# $DOCKER_HOST, for machines that reach no container registry (`FROM python:3.11-slim` needs the tag locally).
#
# Debian bookworm's python3 is 3.11; the stand-in mimics the official image where the Dockerfile can tell:
# `python`, `python3.11` and `pip` on PATH in /usr/local/bin, `python -m venv` works, no PEP 668 marker.
# It also carries the host's CA bundle and points pip/ssl at it, so builds that inherit FROM it trust
# this network's TLS-intercepting proxy -- the project's Dockerfile stays clean for the real world.
#
# The rootfs tarball is cached in $COFFEE_CONTAINER_CACHE (default /var/cache/coffee-container), so only
# the first run pays for debootstrap (~45 s). Usage: standin_base.sh [--force]   (--force: rebuild the cache)
set -eu

TAG=${STANDIN_TAG:-python:3.11-slim}
CACHE=${COFFEE_CONTAINER_CACHE:-/var/cache/coffee-container}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
TARBALL="$CACHE/python-3.11-slim-standin.tar"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

log() { printf 'standin_base: %s\n' "$*" >&2; }

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG already present in the engine"
    exit 0
fi

if [ "$FORCE" = 1 ] || [ ! -s "$TARBALL" ]; then
    command -v debootstrap >/dev/null 2>&1 || {
        log "installing debootstrap"
        apt-get install -y -q debootstrap >&2 || { apt-get update -q >&2 && apt-get install -y -q debootstrap >&2; }
    }
    mkdir -p "$CACHE"
    work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT  # the scratch rootfs and tarball go on any exit
    trap 'exit 130' INT TERM    # stop here (running the EXIT trap), do not carry on
    log "debootstrap bookworm into $work (from $MIRROR)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    }
    root="$work/root"
    # Official python:3.11-slim has python/python3/python3.11/pip in /usr/local/bin.
    for name in python python3 python3.11; do ln -sf /usr/bin/python3.11 "$root/usr/local/bin/$name"; done
    for name in pip pip3 pip3.11; do ln -sf /usr/bin/pip3 "$root/usr/local/bin/$name"; done
    # The official image's Python is not "externally managed"; Debian's is (PEP 668).
    rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
    cp "$HOST_CA" "$root/etc/ssl/certs/host-ca-bundle.crt"
    # Slim like the official image: no apt caches or lists, no docs.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/usr/share/locale/*
    tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
    mv "$work/rootfs.tar" "$TARBALL"
    rm -rf "$work"
    trap - EXIT INT TERM
    log "cached $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

log "importing $TARBALL as $TAG"
docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'CMD ["python3"]' \
    "$TARBALL" "$TAG" >/dev/null
log "done: $TAG"
