#!/usr/bin/env bash
# Build the worker image (Containerfile) with no image registry, then run `grade demo` in it:
# `make test-image`. Needs root and Debian's packages (podman, debootstrap), installed here when
# missing. The base image is Debian 12 made with debootstrap and imported into podman once.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/image
image=${IMAGE:-localhost/flowers-grader:latest}
base=localhost/debian-bookworm:latest
mkdir -p "$work"

for tool in podman debootstrap runc; do
    if ! command -v "$tool" >/dev/null; then
        echo "installing $tool ..."
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" \
            >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 1; }
    fi
done

if ! podman image exists "$base"; then
    echo "making the Debian 12 base with debootstrap (minutes) ..."
    rm -rf "$work/rootfs"
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian \
        >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    tar -C "$work/rootfs" -c . | podman import - "$base" >/dev/null
    rm -rf "$work/rootfs"
fi

echo "building the wheel ..."
rm -rf "$work/dist"
python3 -m pip wheel --no-deps -q -w "$work/dist" . 2>"$work/wheel.log" \
    || { cat "$work/wheel.log" >&2; exit 1; }

echo "building $image ..."
# chroot isolation: RUN steps need no OCI runtime (crun refuses this host's hybrid cgroups).
certificates=()
if [ -n "${PIP_CERT:-}" ]; then   # the registry is behind a TLS proxy: its CA, for pip
    certificates=(--volume "$PIP_CERT:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
fi
podman build --isolation chroot --network host "${certificates[@]}" -f Containerfile \
    -t "$image" . >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log" >&2; exit 1; }

# bubblewrap needs to create namespaces and mount /proc inside the container: the options say
# so, as a Kubernetes pod's securityContext must (README, "A container image for workers").
# runc with cgroupfs, and limits no higher than the host's: on a host like this one (hybrid
# cgroups, a hard RLIMIT_NPROC) crun refuses to start containers, and neither runtime may set
# podman's default limits.
echo "running grade demo in $image ..."
podman --runtime runc --cgroup-manager cgroupfs run --rm --network none \
    --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --security-opt unmask=/proc/* \
    "$image" demo --exercise /course/exercises/flowers-cnn --out /home/grader/demo
