#!/usr/bin/env bash
# One Ray node of the multi-node lane. lane.sh runs it inside the node's network namespace and a new
# mount + PID namespace (`unshare --mount --pid --fork --mount-proc`), so this script is PID 1 there.
#
# It gives the node what a Ray pod has and nothing the notebook wrote:
#   - a private /tmp and a private build/ (the kit's work dir): a path the notebook made is not here;
#   - no kit source: the checkout's kit/ (and the one the venv's editable install points at) is
#     hidden, so the kit code the node runs is the copy Ray Client ships (runtime_env py_modules);
#   - the lane's shared volume bind-mounted at the same path as on the host (an RWX volume);
#   - the cluster's token in its private /tmp (Ray 2.60 has token auth on).
# Usage: node.sh head|worker NODE_IP HEAD_IP
set -euo pipefail
role=$1 node_ip=$2 head_ip=$3
: "${LANE_REPO:?}" "${LANE_SHARED:?}" "${LANE_TOKEN:?}" "${LANE_RAY:?}" "${LANE_HIDE:?}" "${LANE_LOGS:?}"

mount --make-rprivate /
mount -t tmpfs -o size=512m,mode=1777 kit-lane-tmp /tmp
# Its own name, and no DNS: nothing the node does may leave the lane's subnet.
hostname "kitrl-$role-${node_ip##*.}"
printf '127.0.0.1 localhost\n%s %s\n' "$node_ip" "$(hostname)" >/tmp/.hosts
printf '# ray lane: no name server\noptions timeout:1 attempts:1\n' >/tmp/.resolv.conf
mount --bind /tmp/.hosts /etc/hosts
mount --bind /tmp/.resolv.conf /etc/resolv.conf
install -m 0600 "$LANE_TOKEN" /tmp/kit-lane-token
mkdir /tmp/ray /tmp/.volume
mount --bind "$LANE_LOGS" /tmp/ray  # the node's Ray session (logs), kept on the host for a failure report
mount --bind "$LANE_SHARED" /tmp/.volume
mount -t tmpfs -o size=64m kit-lane-build "$LANE_REPO/build"
mkdir -p "$LANE_SHARED"
mount --move /tmp/.volume "$LANE_SHARED"
for dir in $LANE_HIDE; do
    mount -t tmpfs -o size=1m,ro kit-lane-hidden "$dir"
done
mkdir -p /tmp/work && cd /tmp/work

export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=/tmp/kit-lane-token RAY_USAGE_STATS_ENABLED=0
export HOME=/tmp/work TMPDIR=/tmp
# Fixed ports (each node has its own network namespace): with port 0 the raylet waits a fixed time for
# its agents to write their port files, which a busy 2-core machine does not always meet.
common=(--node-ip-address "$node_ip" --object-store-memory $((96 * 1024 * 1024)) --temp-dir /tmp/ray
        --node-manager-port 6380 --object-manager-port 6381 --metrics-export-port 6382
        --dashboard-agent-listen-port 6383 --dashboard-agent-grpc-port 6384 --runtime-env-agent-port 6385
        --disable-usage-stats --block)
if [[ $role == head ]]; then
    # No CPU on the head, as on a KubeRay head pod with num-cpus 0: tasks land on the workers.
    args=(--head --port 6379 --ray-client-server-port 10001 --num-cpus 0 --include-dashboard false)
else
    args=(--address "$head_ip:6379" --num-cpus 1)
fi
# The raylet gives its dashboard agent a fixed 15 s to write its port file; on an overloaded machine the
# agent's imports can take longer, so a node that fails while starting is started again (lane.sh touches
# /tmp/kit-lane-stopping before it stops the node, so a stopped node stays stopped).
for attempt in 1 2 3; do
    began=$SECONDS
    "$LANE_RAY" start "${args[@]}" "${common[@]}" && exit 0
    [[ -e /tmp/kit-lane-stopping ]] || ((SECONDS - began > 120)) && exit 1
    echo "[node.sh] $role: Ray failed while starting (attempt $attempt); cleaning up and starting again" >&2
    "$LANE_RAY" stop --force >/dev/null 2>&1 || true
    sleep 2
done
exit 1
