#!/usr/bin/env bash
# The multi-node Ray lane: a Ray head and two workers on one Linux machine, each in its own network,
# mount and PID namespace, on a private bridge; the notebook kernel stays outside, in the host's
# namespaces, and reaches the head as a JupyterHub pod reaches a RayCluster (Ray Client, ray://HEAD:10001).
#
#   lane.sh run -- CMD ...   bring the lane up, run CMD with the lane's settings in its environment
#                            (PROFILE, RAY_ADDRESS, KIT_SHARED_STORAGE, token), always tear down
#   lane.sh up | down        the two halves, for debugging (down is safe to repeat)
#   lane.sh check            the checks `up` makes first (and the removal of an abandoned lane), nothing more
#
# Needs root, iproute2 and util-linux's unshare/nsenter. Everything it creates carries the prefix
# kitrl- (bridge kitrl-br, namespaces kitrl-head/-w1/-w2, veths kitrl-*-h) on 10.231.0.0/24; it refuses
# to start while another lane runs, and removes the network of one that was abandoned (no process left). Set PY to the Python whose Ray the nodes run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
# The nodes start in other directories: make PY absolute (make passes .venv/bin/python), without resolving
# the venv's symlink (the venv is found through the path it is called by).
case $PY in
    /*) ;;
    */*) PY=$PWD/$PY ;;
    *) PY=$(command -v "$PY") ;;
esac
RAY=$(dirname "$PY")/ray
STATE=$REPO/build/ray-lane
SHARED=$STATE/shared
TOKEN=$STATE/auth_token
SUBNET=10.231.0
HOST_IP=$SUBNET.1
HEAD_IP=$SUBNET.10
BRIDGE=kitrl-br
NODES=(head w1 w2)
declare -A IPS=([head]=$SUBNET.10 [w1]=$SUBNET.11 [w2]=$SUBNET.12)
ADDRESS=ray://$HEAD_IP:10001
START_TIMEOUT=${LANE_START_TIMEOUT:-180}

log() { echo "[ray-lane] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

preflight() {
    [[ $(id -u) == 0 ]] || die "needs root (network namespaces, mounts): run as root or in a privileged container"
    command -v ip >/dev/null && command -v unshare >/dev/null && command -v nsenter >/dev/null \
        || die "needs iproute2 (ip) and util-linux (unshare, nsenter)"
    [[ -x $RAY ]] || die "no Ray at $RAY: set PY to the kit's venv Python (make does)"
    reclaim_abandoned
    [[ $(cat /proc/sys/net/ipv4/ip_forward) == 0 ]] \
        || die "IPv4 forwarding is on: the lane's nodes could reach beyond this machine; run it where it is off"
    ip route | grep -q "^$SUBNET\." && die "$SUBNET.0/24 is already routed on this machine; the lane will not share it"
    return 0
}

leftovers() {  # this machine's kitrl- bridge, namespaces and veths, whoever made them
    ip link show "$BRIDGE" >/dev/null 2>&1 && echo "interface $BRIDGE"
    local ns
    for ns in "${NODES[@]}"; do
        ip netns list | grep -qw "kitrl-$ns" && echo "namespace kitrl-$ns"
        ip link show "kitrl-$ns-h" >/dev/null 2>&1 && echo "interface kitrl-$ns-h"
    done
    return 0
}

# A lane whose namespaces still run a process is up (maybe another checkout's): refuse. One with no process
# left was abandoned (its run was killed before `down`, e.g. a session or CI job that ended mid-test):
# remove its network objects, which hold nothing, so that it cannot block every later run.
reclaim_abandoned() {
    local found ns running=""
    found=$(leftovers)
    [[ -z $found ]] && return 0
    for ns in "${NODES[@]}"; do
        ip netns list | grep -qw "kitrl-$ns" && [[ -n $(ip netns pids "kitrl-$ns" 2>/dev/null) ]] && running+=" kitrl-$ns"
    done
    [[ -n $running ]] && die "$(echo "$found" | head -n 1) exists and processes run in${running}: another lane is up (lane.sh down)"
    log "an abandoned lane (no process in its namespaces): removing $(echo "$found" | paste -sd, - | sed 's/,/, /g')"
    remove_network
    found=$(leftovers)
    [[ -z $found ]] || die "could not remove the abandoned lane's $(echo "$found" | paste -sd, -)"
}

remove_network() {
    local ns
    for ns in "${NODES[@]}"; do
        ip netns delete "kitrl-$ns" 2>/dev/null || true
        ip link delete "kitrl-$ns-h" 2>/dev/null || true
    done
    ip link delete "$BRIDGE" 2>/dev/null || true
}

# Directories the nodes must not see: the checkout's kit/ and the kit/ an editable install maps to.
hidden_dirs() {
    local dirs=("$REPO/kit") other
    other=$(cd / && "$PY" -c 'import importlib.util as u; s = u.find_spec("kit"); print(s.submodule_search_locations[0] if s else "")' 2>/dev/null || true)
    [[ -n $other && $other != "$REPO/kit" && -d $other ]] && dirs+=("$other")
    echo "${dirs[@]}"
}

network_up() {
    ip link add "$BRIDGE" type bridge
    ip addr add "$HOST_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    local ns
    for ns in "${NODES[@]}"; do
        ip netns add "kitrl-$ns"
        ip link add "kitrl-$ns-h" type veth peer name "kitrl-$ns-n"
        ip link set "kitrl-$ns-h" master "$BRIDGE" up
        ip link set "kitrl-$ns-n" netns "kitrl-$ns"
        ip -n "kitrl-$ns" link set lo up
        ip -n "kitrl-$ns" link set "kitrl-$ns-n" name eth0
        ip -n "kitrl-$ns" addr add "${IPS[$ns]}/24" dev eth0
        ip -n "kitrl-$ns" link set eth0 up
        # Ray finds a node's IP by the route to a public address (a UDP connect: no packet is sent); with
        # no route it falls back to slow lookups in every process. The route ends at the host's bridge
        # address, and nothing is forwarded further (node.sh also gives each node an empty resolver).
        ip -n "kitrl-$ns" route add default via "$HOST_IP"
    done
}

start_node() {
    local ns=$1 role=worker
    [[ $ns == head ]] && role=head
    # setsid: the node's process group is its own; --kill-child: when unshare dies, so does the node's PID 1,
    # and with it every process of its PID namespace.
    mkdir -p "$STATE/$ns-ray"
    LANE_LOGS=$STATE/$ns-ray LANE_REPO=$REPO LANE_SHARED=$SHARED LANE_TOKEN=$TOKEN LANE_RAY=$RAY LANE_HIDE="$(hidden_dirs)" \
        setsid ip netns exec "kitrl-$ns" unshare --mount --uts --pid --fork --kill-child --mount-proc \
        "$HERE/node.sh" "$role" "${IPS[$ns]}" "$HEAD_IP" >"$STATE/$ns.log" 2>&1 </dev/null &
    echo $! >"$STATE/$ns.pid"
    disown  # stop_node ends it; no job-control chatter about it
}

wait_port() {  # host -> node TCP port, within START_TIMEOUT
    local ip=$1 port=$2 deadline=$((SECONDS + START_TIMEOUT))
    until (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; do
        ((SECONDS < deadline)) || die "nothing listens on $ip:$port after ${START_TIMEOUT} s (logs: $STATE/*.log)"
        sleep 1
    done
}

CREATED=0  # set once preflight passed: only then is there anything of ours to tear down
teardown() { ((CREATED)) && down; return 0; }

wait_started() {  # until the node's `ray start` says it started; a node that gave up fails the lane
    local ns=$1 deadline=$((SECONDS + START_TIMEOUT))
    until grep -qs "Ray runtime started" "$STATE/$ns.log"; do
        kill -0 "$(cat "$STATE/$ns.pid")" 2>/dev/null || die "node $ns exited while starting (log: $STATE/$ns.log)"
        ((SECONDS < deadline)) || die "node $ns did not start within ${START_TIMEOUT} s (log: $STATE/$ns.log)"
        sleep 1
    done
    log "node $ns started (${IPS[$ns]})"
}

up() {
    preflight
    CREATED=1
    rm -rf "$STATE"
    mkdir -p "$SHARED"
    chmod 0700 "$STATE"
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_hex(32))' >"$TOKEN")
    network_up
    log "network up: $BRIDGE $HOST_IP, head $HEAD_IP, workers ${IPS[w1]} ${IPS[w2]}"
    # One node after the other (a node is up once its dashboard agent listens): three Pythons importing
    # Ray's agents at once on 2 cores is what makes a raylet give up.
    local ns
    for ns in "${NODES[@]}"; do
        start_node "$ns"
        wait_started "$ns"
    done
    wait_port "$HEAD_IP" 10001
    RAY_ADDRESS=$ADDRESS RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$TOKEN \
        "$PY" -m kit.machine.ray_cluster wait --nodes 3 --cpus 2 --timeout "$START_TIMEOUT" \
        || die "the lane's Ray did not come up with 3 nodes (logs: $STATE/*.log)"
    log "up: $ADDRESS, shared volume $SHARED"
}

stop_node() {  # `ray stop` inside the node's namespaces (it sees only them), then end the namespace
    local ns=$1 pid child
    [[ -f $STATE/$ns.pid ]] || return 0
    pid=$(cat "$STATE/$ns.pid")
    if kill -0 "$pid" 2>/dev/null; then
        child=$(pgrep -P "$pid" | head -n 1 || true)
        if [[ -n $child ]]; then
            nsenter -t "$child" -a touch /tmp/kit-lane-stopping || true
            timeout 30 nsenter -t "$child" -a env RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=/tmp/kit-lane-token \
                "$RAY" stop --grace-period 5 >>"$STATE/$ns.log" 2>&1 || true
        fi
        # Whatever `ray stop` left: unshare's --kill-child ends the namespace's PID 1, and the kernel every
        # other process of that PID namespace with it.
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 10); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/$ns.pid"
}

down() {
    stop_node w1 & stop_node w2 & wait  # the workers together, then the head
    stop_node head
    remove_network
    rm -rf "$SHARED" "$TOKEN"
    CREATED=0
    log "down"
}

run() {
    [[ ${1:-} == -- ]] && shift
    (($#)) || die "usage: lane.sh run -- COMMAND ..."
    trap 'teardown' EXIT
    trap 'exit 130' INT TERM
    local began=$SECONDS
    up
    log "lane up in $((SECONDS - began)) s; running: $*"
    local rc=0
    PROFILE=cluster RAY_ADDRESS=$ADDRESS KIT_SHARED_STORAGE=$SHARED RAY_AUTH_MODE=token \
        RAY_AUTH_TOKEN_PATH=$TOKEN KIT_RAY_LANE=1 "$@" || rc=$?
    log "command finished (exit $rc) $((SECONDS - began)) s after the lane began; tearing down"
    return "$rc"
}

case ${1:-} in
    up) trap 'rc=$?; ((rc)) && teardown; exit $rc' EXIT; up ;;
    check) preflight; log "ready: no lane is up" ;;
    down) down ;;
    run) shift; run "$@" ;;
    *) die "usage: lane.sh up | down | check | run -- COMMAND ..." ;;
esac
