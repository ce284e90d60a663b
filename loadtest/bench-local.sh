#!/usr/bin/env bash
# Runs a `switchboard-loadtest` scenario against a cluster started here for the run:
# redis-server, one room service and two gateways, release builds, on loopback ports
# (BASE_PORT, default 16300, and the next few). Everything is stopped when the run
# ends. The numbers in docs/benchmarks.md come from it:
#
#   cargo build --release --bins
#   loadtest/bench-local.sh negotiate --rooms 50 --rate 2000 --duration 20s
#   loadtest/bench-local.sh connect --connections 10000 --rate 2000 --source-ip 127.0.0.2 --source-ip 127.0.0.3
#
# The first argument names the scenario, the rest go to it (loadtest/README.md); the
# gateways' URLs and their metrics URLs are added. The report is the
# last line of standard output.
set -euo pipefail
scenario=${1:?usage: loadtest/bench-local.sh negotiate|connect [ARGS...]}
shift
# Each connection is a file descriptor in the tester and in a gateway: as many as the
# hard limit allows (20,000 on the development machine, which caps one tester process
# at about that many connections).
ulimit -n "$(ulimit -Hn)"
cd "$(dirname "$0")/.."
bin=target/release
base=${BASE_PORT:-16300}
redis_port=$base room_port=$((base + 1)) room_admin=$((base + 2))
secret=bench-local-secret
logs=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$logs"' EXIT

# Waits (at most 20 s) until something listens on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1; logs in $logs" >&2
    cat "$logs"/*.log >&2
    return 1
}

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$logs/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"
"$bin/room-service" --redis-url "redis://127.0.0.1:$redis_port" \
    --listen "127.0.0.1:$room_port" --admin-listen "127.0.0.1:$room_admin" >"$logs/room.log" 2>&1 &
pids+=($!)
wait_port "$room_port"
urls=() metrics=()
for i in 0 1; do
    port=$((base + 10 + i)) admin=$((base + 20 + i))
    # The tester is one source address whose connections each send far more than one
    # person would: the per-connection and per-address limits are lifted.
    GATEWAY_REDIS__URL="redis://127.0.0.1:$redis_port" GATEWAY_ROOM_SERVICE__URL="http://127.0.0.1:$room_port" \
        GATEWAY_AUTH__JWT_SECRET=$secret GATEWAY_LIMITS__CONNECTIONS_PER_IP_PER_SECOND=0 \
        GATEWAY_LIMITS__MESSAGES_PER_SECOND=1000000 GATEWAY_LIMITS__MESSAGE_BURST=1000000 \
        GATEWAY_LIMITS__BYTES_PER_SECOND=1000000000 GATEWAY_LIMITS__BYTE_BURST=1000000000 \
        GATEWAY_LIMITS__MAX_CONNECTIONS=1000000 \
        "$bin/gateway" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" >"$logs/gateway-$i.log" 2>&1 &
    pids+=($!)
    wait_port "$port"
    urls+=(--gateway "ws://127.0.0.1:$port/ws")
    metrics+=(--metrics "http://127.0.0.1:$admin/metrics")
done
urls+=("${metrics[@]}")
"$bin/switchboard-loadtest" "$scenario" "${urls[@]}" --jwt-secret "$secret" "$@"
