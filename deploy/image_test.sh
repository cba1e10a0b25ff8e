#!/usr/bin/env bash
# `make image-test`: build the image on this machine without pulling anything, then check it.
#
# 1. docker.io and debootstrap from Debian's packages (apt-get), when missing;
# 2. dockerd started here on a private socket: --bridge=none --iptables=false (containers get
#    the host's network or none, so no traffic leaves loopback);
# 3. a base image: a Debian rootfs made with debootstrap (python3, python3-venv), docker import;
# 4. a wheelhouse of every runtime dependency (pip wheel -c constraints.txt) in the context;
# 5. docker build --network host --build-arg BASE=<that base>;
# 6. checks: `vmt --help`; the user is not root; the numba kernels load from the image's cache;
#    `vmt serve` answers /healthz on 127.0.0.1 (--network host); the image size is printed;
# 7. dockerd is stopped (also on failure).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${VMT_IMAGE_TEST_DIR:-/var/tmp/vmt-image-test}
PYTHON=${PYTHON:-.venv/bin/python}
SUITE=${VMT_IMAGE_TEST_SUITE:-bookworm}
MIRROR=${VMT_IMAGE_TEST_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=vmt-base:$SUITE
IMAGE=${VMT_IMAGE:-vmt:test}
EXTRAS="service,labelbox,vertex,pipelines"
started=$(date +%s)
log() { echo "[image-test +$(( $(date +%s) - started ))s] $*"; }

# 1. -----------------------------------------------------------------------------------------
missing=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
DOCKER=/usr/bin/docker  # Debian's client, matching its engine

# 2. -----------------------------------------------------------------------------------------
mkdir -p "$WORK/data" "$WORK/exec"
export DOCKER_HOST="unix://$WORK/docker.sock"
log "starting dockerd (log: $WORK/dockerd.log)"
/usr/sbin/dockerd --bridge=none --iptables=false --ip-masq=false \
    --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    --host "$DOCKER_HOST" >"$WORK/dockerd.log" 2>&1 &
dockerd_pid=$!
container=""
cleanup() {
    [ -n "$container" ] && $DOCKER rm -f "$container" >/dev/null 2>&1 || true
    if kill "$dockerd_pid" 2>/dev/null; then
        wait "$dockerd_pid" 2>/dev/null || true
        log "dockerd stopped"
    fi
}
trap cleanup EXIT
for _ in $(seq 60); do
    $DOCKER info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$WORK/dockerd.log"; exit 1; }
    sleep 1
done
$DOCKER info --format 'dockerd {{.ServerVersion}}, storage driver {{.Driver}}'

# 3. -----------------------------------------------------------------------------------------
if ! $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "debootstrap $SUITE (python3, python3-venv) into $WORK/rootfs"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$WORK/rootfs" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    rm -rf "$WORK/rootfs/var/cache/apt/archives"/*.deb "$WORK/rootfs/var/lib/apt/lists"/*
    tar -C "$WORK/rootfs" -c . | $DOCKER import - "$BASE_IMAGE" >/dev/null
    rm -rf "$WORK/rootfs"
fi
log "base image $BASE_IMAGE: $($DOCKER run --rm --network none "$BASE_IMAGE" python3 --version)"

# 4. -----------------------------------------------------------------------------------------
log "wheelhouse: pip wheel -c constraints.txt .[$EXTRAS]"
rm -f wheelhouse/vertex_model_training-*.whl  # ours is rebuilt; the others are reused
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check -w wheelhouse -c constraints.txt \
    --find-links wheelhouse \
    ".[$EXTRAS]" 2>"$WORK/wheelhouse.log" || { tail -20 "$WORK/wheelhouse.log"; exit 1; }
log "wheelhouse: $(ls wheelhouse/*.whl | wc -l) wheels, $(du -sh wheelhouse | cut -f1)"

# 5. -----------------------------------------------------------------------------------------
log "docker build --network host --build-arg BASE=$BASE_IMAGE -t $IMAGE"
build_started=$(date +%s)
$DOCKER build --network host --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; exit 1; }
grep -o "numba cache: .*" "$WORK/build.log" || true
log "built in $(( $(date +%s) - build_started ))s"

# 6. -----------------------------------------------------------------------------------------
help=$($DOCKER run --rm --network none "$IMAGE" vmt --help)
grep -q "Usage: vmt" <<<"$help" || { echo "$help"; exit 1; }
log "vmt --help in the container: $(grep -c '│ ' <<<"$help") lines of commands and options"
uid=$($DOCKER run --rm --network none "$IMAGE" id -u)
[ "$uid" != 0 ] || { echo "the image runs as root"; exit 1; }
log "runs as uid $uid"
$DOCKER run --rm --network none "$IMAGE" python3 -c "import kfp, vmt.orchestrators.steps; print('kfp', kfp.__version__)"

cache_log=$($DOCKER run --rm -i --network none -e NUMBA_DEBUG_CACHE=1 "$IMAGE" python3 - \
    <deploy/check_numba_cache.py 2>&1)
loaded=$(grep -c "data loaded from" <<<"$cache_log" || true)
saved=$(grep -c "data saved to" <<<"$cache_log" || true)
log "numba kernels: $loaded loaded from the image's cache, $saved compiled at run time"
[ "$loaded" -gt 0 ] && [ "$saved" -eq 0 ] || { echo "$cache_log" | tail -20; exit 1; }

serve_and_check() {  # $1: orchestrator; the settings each one needs, with dummy values
    local orchestrator=$1 port health=""
    shift
    port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    container=$($DOCKER run -d --network host -e VMT_WEBHOOK_SECRET=image-test-secret \
        -e PORT="$port" "$@" "$IMAGE" vmt serve --host 127.0.0.1 --orchestrator "$orchestrator")
    for _ in $(seq 90); do
        health=$(curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null) && break
        [ "$($DOCKER inspect -f '{{.State.Running}}' "$container")" = true ] || break
        sleep 1
    done
    if [ -z "$health" ]; then
        $DOCKER logs "$container" 2>&1 | tail -20
        exit 1
    fi
    log "vmt serve --orchestrator $orchestrator in the container: GET 127.0.0.1:$port/healthz -> $health"
    $DOCKER rm -f "$container" >/dev/null
    container=""
}
serve_and_check local -e LABELBOX_API_KEY=image-test-not-a-key
serve_and_check vertex-pipelines -e VMT_GCP_PROJECT=image-test -e VMT_GCS_BUCKET=image-test \
    -e VMT_PIPELINE_IMAGE="$IMAGE"

size=$($DOCKER image inspect --format '{{.Size}}' "$IMAGE")
base_size=$($DOCKER image inspect --format '{{.Size}}' "$BASE_IMAGE")
log "image $IMAGE: $(( size / 1000000 )) MB (base $(( base_size / 1000000 )) MB, vmt and its dependencies $(( (size - base_size) / 1000000 )) MB)"
log "image-test passed"
