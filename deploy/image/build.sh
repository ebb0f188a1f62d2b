#!/usr/bin/env bash
# Build the Dockerfile without a Docker daemon, run the image, check it answers, report its size.
#
#   sudo deploy/image/build.sh          (or `make image`, as root)
#
# Uses buildah with chroot isolation (no daemon, no user namespaces), so it works as root inside
# a container or a CI machine. Steps:
#   1. a Debian base image with Python >= 3.11 and the venv module, made with debootstrap and
#      committed under a local name (reused when it exists; BASE_REBUILD=1 makes it afresh);
#   2. `buildah bud` of the Dockerfile with --build-arg BASE_IMAGE=that base. pip inside the
#      build sees this machine's pip configuration (one pip.conf written from `pip config list`,
#      PIP_* variables included) and the local paths it names, mounted read-only: find-links,
#      file:// indexes, the CA bundle, constraint files;
#   3. torch is the CPU wheel (TORCH_REQUIREMENT, torch==2.13.0+cpu by default) from wherever
#      pip's configuration finds it; the build fails rather than take the CUDA wheel;
#   4. a container of the image runs its entrypoint (`topicproj serve`, the demo model trained
#      on first start) in the background; `topicproj health` inside the image and a projection
#      through the client must answer; then the image size is printed.
#
# Settings (environment): IMAGE, BASE_IMAGE, DEBIAN_SUITE, DEBIAN_MIRROR, TORCH_REQUIREMENT,
# TORCH_INDEX_URL (empty: pip's configuration), PYTHON (the pip whose configuration is carried),
# KEEP_CONTAINER=1 (leave the checked container for inspection), START_TIMEOUT (seconds).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGE=${IMAGE:-localhost/topicproj:cpu}
BASE_IMAGE=${BASE_IMAGE:-localhost/topicproj-base:bookworm}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TORCH_REQUIREMENT=${TORCH_REQUIREMENT:-torch==2.13.0+cpu}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
PYTHON=${PYTHON:-python3}
START_TIMEOUT=${START_TIMEOUT:-900}
export BUILDAH_ISOLATION=chroot

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/topicproj-image.XXXXXX)
CONTAINER=""
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n $CONTAINER && ${KEEP_CONTAINER:-0} != 1 ]]; then
        buildah rm "$CONTAINER" > /dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

# --- 0. tools ------------------------------------------------------------------------------
[[ $(id -u) == 0 ]] || die "run as root (buildah with chroot isolation, debootstrap)"
if ! command -v buildah > /dev/null || ! command -v debootstrap > /dev/null; then
    command -v apt-get > /dev/null || die "install buildah and debootstrap"
    say "installing buildah and debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap > /dev/null
fi

# --- 1. base image -------------------------------------------------------------------------
if [[ ${BASE_REBUILD:-0} == 1 ]] || ! buildah inspect --type image "$BASE_IMAGE" > /dev/null 2>&1; then
    say "base image $BASE_IMAGE: debootstrap $DEBIAN_SUITE with python3, python3-venv"
    rootfs=$WORK/rootfs
    debootstrap --variant=minbase --include=python3,python3-venv \
        "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" > "$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
    # What an image does not need: package lists, caches, docs and the host's device nodes.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/dev/* \
        "$rootfs"/proc/* "$rootfs"/sys/* "$rootfs"/tmp/* "$rootfs"/run/*
    tar -C "$rootfs" --numeric-owner -cf "$WORK/rootfs.tar" .
    rm -rf "$rootfs"
    base=$(buildah from scratch)
    buildah add "$base" "$WORK/rootfs.tar" / > /dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd /bin/bash \
        --label org.opencontainers.image.description="Debian $DEBIAN_SUITE minbase with python3, python3-venv" \
        "$base"
    buildah commit --rm --quiet "$base" "$BASE_IMAGE" > /dev/null
    rm -f "$WORK/rootfs.tar"
fi
check=$(buildah from --quiet "$BASE_IMAGE")
buildah run "$check" -- python3 -c 'import sys, venv; assert sys.version_info >= (3, 11), sys.version' \
    || { buildah rm "$check" > /dev/null; die "$BASE_IMAGE lacks python3 >= 3.11 with venv (BASE_REBUILD=1 remakes it)"; }
buildah rm "$check" > /dev/null

# --- 2. the image ---------------------------------------------------------------------------
# pip's configuration as this machine resolves it, and the local paths it names, mounted
# read-only at the same place in every RUN step.
"$PYTHON" "$REPO/deploy/image/pip_context.py" "$WORK/pip.conf" "$PYTHON" > "$WORK/mounts"
mounts=(-v "$WORK/pip.conf:/etc/pip.conf:ro")
while IFS= read -r path; do
    mounts+=(-v "$path:$path:ro")
done < "$WORK/mounts"
say "pip configuration for the build:"
sed 's/^/    /' "$WORK/pip.conf" >&2
say "building $IMAGE from $BASE_IMAGE ($TORCH_REQUIREMENT)"
build_start=$SECONDS
buildah bud --isolation chroot --layers --format docker \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL" \
    --build-arg TORCH_REQUIREMENT="$TORCH_REQUIREMENT" \
    "${mounts[@]}" \
    -f "$REPO/Dockerfile" -t "$IMAGE" "$REPO"
build_seconds=$((SECONDS - build_start))

# --- 3. run it ------------------------------------------------------------------------------
CONTAINER=$(buildah from --quiet "$IMAGE")
# The CPU image must not carry CUDA: torch's CPU build, no nvidia-* distributions.
buildah run "$CONTAINER" -- python -c '
import importlib.metadata as md, torch
cuda = sorted(d.metadata["Name"] for d in md.distributions() if d.metadata["Name"].startswith("nvidia"))
assert torch.version.cuda is None and not cuda, (torch.__version__, torch.version.cuda, cuda)
print("torch", torch.__version__, "(CPU build, no CUDA libraries)")
'

read -r port metrics_port < <("$PYTHON" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')
# The image's own entrypoint (`topicproj serve`), on free ports: chroot isolation shares this
# machine's network. /models is a fresh folder owned by the image's user, as a new volume is.
mkdir -p "$WORK/models"
chown 10001:10001 "$WORK/models"
mapfile -t entrypoint < <(buildah inspect --type image "$IMAGE" \
    | "$PYTHON" -c 'import json, sys; print(*json.load(sys.stdin)["Docker"]["config"]["Entrypoint"], sep="\n")')
((${#entrypoint[@]})) || die "$IMAGE has no entrypoint"
say "running ${entrypoint[*]} --port $port --metrics-port $metrics_port (the demo model trains on first start)"
buildah run -v "$WORK/models:/models" "$CONTAINER" -- \
    "${entrypoint[@]}" --port "$port" --metrics-port "$metrics_port" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!

start=$SECONDS
until buildah run "$CONTAINER" -- topicproj health --address "127.0.0.1:$port" --timeout 5 \
        > "$WORK/health.log" 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        tail -40 "$WORK/server.log" >&2
        die "the server exited before it was healthy"
    fi
    if ((SECONDS - start > START_TIMEOUT)); then
        tail -40 "$WORK/server.log" >&2
        die "not healthy after ${START_TIMEOUT}s"
    fi
    sleep 5
done
say "healthy after $((SECONDS - start))s: $(tr '\n' ' ' < "$WORK/health.log")"

# A projection through the client, from inside the image.
buildah run "$CONTAINER" -- python -c '
import sys
from topicproj import TopicClient

with TopicClient(sys.argv[1]) as client:
    result = client.project([["alien", "space"], ["love", "romance"]], top_k=3)
assert len(result.top) == 2 and all(result.top), result.top
assert (result.known_keywords > 0).all(), result.known_keywords
print("model", result.model_version, "topics", result.topics.shape[1])
for keywords, labels, top in zip(["alien space", "love romance"], result.top_labels, result.top):
    print(f"  {keywords}: " + ", ".join(f"{label} {score:.3f}" for label, (_, score) in zip(labels, top)))
' "127.0.0.1:$port"
curl -fsS -o "$WORK/metrics.txt" "http://127.0.0.1:$metrics_port/metrics" \
    && grep -q '^topicproj_requests_total{.*rpc="Project"' "$WORK/metrics.txt" \
    || die "no topicproj_requests_total for Project on :$metrics_port/metrics"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" && rc=0 || rc=$?
SERVER_PID=""
((rc == 0)) || { tail -20 "$WORK/server.log" >&2; die "the server exited $rc on SIGTERM"; }
say "SIGTERM: drained and exited 0"

# --- 4. size --------------------------------------------------------------------------------
size=$(buildah images --format '{{.Size}}' "$IMAGE" | head -1)
venv=$(buildah run "$CONTAINER" -- du -sh /opt/venv | cut -f1)
say "image $IMAGE: $size (of which /opt/venv $venv; base $BASE_IMAGE" \
    "$(buildah images --format '{{.Size}}' "$BASE_IMAGE" | head -1)); built in ${build_seconds}s"
