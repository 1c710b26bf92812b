#!/usr/bin/env bash
# Creates the local Debian base image (localhost/debian-bookworm-min:latest) that deploy/Dockerfile builds
# FROM on machines without an image registry: debootstrap --variant=minbase from the machine's own apt
# mirror, imported with podman. Idempotent: does nothing when the image already exists.
set -euo pipefail
IMAGE=${BASE_IMAGE:-localhost/debian-bookworm-min:latest}
SUITE=${BASE_SUITE:-bookworm}

if podman image exists "$IMAGE"; then
    echo "base image $IMAGE exists"
    exit 0
fi

# The first Debian mirror named in the apt sources (deb822 "URIs:" or one-line "deb URL SUITE").
mirror=$(
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
    } | grep -v -e security -e '^$' | grep -i debian | head -n 1
) || true
mirror=${BASE_MIRROR:-${mirror:-http://deb.debian.org/debian}}

rootfs=$(mktemp -d /var/tmp/myolog-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap --variant=minbase $SUITE from $mirror"
debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" > "$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# Trim what a runtime image never needs.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE"
echo "imported $IMAGE"
