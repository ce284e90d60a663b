#!/usr/bin/env bash
# Runs a `switchboard-loadtest` scenario against a cluster started here for the run:
# redis-server, one room service and two gateways, release builds, on loopback ports
# (BASE_PORT, default 16300, and the next few). Everything is stopped when the run
# ends. The numbers in docs/benchmarks.md come from it:
#
#   cargo build --release --bins
#   loadtest/bench-local.sh negotiate --rooms 50 --rate 2000 --duration 20s
#   loadtest/bench-local.sh connect --connections 10000 --rate 2000 --source-ip 127.0.0.2 --source-ip 127.0.0.3
#   loadtest/bench-local.sh churn --clients 50 --rate 200 --duration 20s
#   loadtest/bench-local.sh storm --pairs 20 --duration 20s --disrupt 'kill -TERM $PID_GATEWAY_0'
#   loadtest/bench-local.sh run loadtest/scenarios/negotiate-10k.toml
#
# The gateways' process ids are exported as PID_GATEWAY_0 and PID_GATEWAY_1 for a
# storm's --disrupt command (single-quoted, so that the tester's shell expands them;
# not GATEWAY_*, which the gateways would read as settings).
#
# The first argument names the scenario, the rest go to it (loadtest/README.md); the
# gateways' URLs and their metrics URLs are added. The report is the
# last line of standard output.
#
# GATEWAYS=N runs N gateways (default 2); TESTERS=M runs M tester processes at once,
# each with the arguments given (and, for `connect`, its own source addresses), and
# merges their reports: one process holds at most ~20,000 connections here (the hard
# limit of open files), so 50,000 take three.
#
# BENCH_GATEWAY=PATH runs that gateway binary instead of target/release/gateway (the
# tester, room service and Redis unchanged), for comparing two builds in alternated runs.
#
# REDIS_SHARDS=N runs a Redis Cluster of N masters (1, or 3 and more) instead of one
# plain redis-server: room channels then use sharded pub/sub. Either way the Redis
# servers' CPU seconds over the run (INFO cpu, summed) go to standard error.
set -euo pipefail
scenario=${1:?usage: loadtest/bench-local.sh negotiate|connect|churn|storm|run FILE [ARGS...]}
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

source loadtest/wait-port.sh

shards=${REDIS_SHARDS:-0}
redis_ports=()
for i in $(seq 0 $((shards > 0 ? shards - 1 : 0))); do
    port=$((redis_port + (i > 0 ? 30 + i : 0)))
    cluster_args=()
    if [ "$shards" -gt 0 ]; then
        cluster_args=(--cluster-enabled yes --cluster-config-file "$logs/nodes-$port.conf" --cluster-port $((port + 100))
            --cluster-announce-ip 127.0.0.1)
    fi
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$logs" "${cluster_args[@]}" \
        >"$logs/redis-$port.log" 2>&1 &
    pids+=($!)
    wait_port "$port" "$logs"
    redis_ports+=("$port")
done
redis_url="redis://127.0.0.1:$redis_port"
if [ "$shards" -eq 1 ]; then
    redis-cli -p "$redis_port" CLUSTER ADDSLOTSRANGE 0 16383 >/dev/null
elif [ "$shards" -gt 1 ]; then
    redis-cli --cluster create "${redis_ports[@]/#/127.0.0.1:}" --cluster-yes >"$logs/cluster.log" 2>&1
fi
if [ "$shards" -gt 0 ]; then
    # At most 20 s, as wait_port.
    for port in "${redis_ports[@]}"; do
        for _ in $(seq 200); do
            redis-cli -p "$port" CLUSTER INFO | grep -q cluster_state:ok && continue 2
            sleep 0.1
        done
        echo "the Redis Cluster is not ok on port $port; logs in $logs" >&2
        exit 1
    done
    redis_url="redis-cluster://127.0.0.1:$redis_port"
fi
# CPU seconds (user + system) so far of the Redis servers on the given ports (default:
# every one).
redis_cpu() {
    local ports=("$@")
    [ $# -gt 0 ] || ports=("${redis_ports[@]}")
    for port in "${ports[@]}"; do redis-cli -p "$port" INFO cpu; done |
        awk -F: '/^used_cpu_(user|sys):/ { total += $2 } END { printf "%.3f", total }'
}

"$bin/room-service" --redis-url "$redis_url" \
    --listen "127.0.0.1:$room_port" --admin-listen "127.0.0.1:$room_admin" >"$logs/room.log" 2>&1 &
pids+=($!)
wait_port "$room_port" "$logs"
urls=() metrics=()
for i in $(seq 0 $((${GATEWAYS:-2} - 1))); do
    port=$((base + 10 + i)) admin=$((base + 20 + i))
    # The tester is one source address whose connections each send far more than one
    # person would: the per-connection and per-address limits are lifted.
    GATEWAY_REDIS__URL="$redis_url" GATEWAY_ROOM_SERVICE__URL="http://127.0.0.1:$room_port" \
        GATEWAY_AUTH__JWT_SECRET=$secret GATEWAY_LIMITS__CONNECTIONS_PER_IP_PER_SECOND=0 \
        GATEWAY_LIMITS__MESSAGES_PER_SECOND=1000000 GATEWAY_LIMITS__MESSAGE_BURST=1000000 \
        GATEWAY_LIMITS__BYTES_PER_SECOND=1000000000 GATEWAY_LIMITS__BYTE_BURST=1000000000 \
        GATEWAY_LIMITS__MAX_CONNECTIONS=1000000 \
        "${BENCH_GATEWAY:-$bin/gateway}" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" >"$logs/gateway-$i.log" 2>&1 &
    pids+=($!)
    export "PID_GATEWAY_$i=$!"
    wait_port "$port" "$logs"
    urls+=(--gateway "ws://127.0.0.1:$port/ws")
    metrics+=(--metrics "http://127.0.0.1:$admin/metrics")
done
urls+=("${metrics[@]}")
cpu_before=$(redis_cpu)
command=("$scenario")
if [ "$scenario" = run ]; then
    # A scenario file: `run FILE`, then the gateways, then the caller's overrides.
    command=(run "$1")
    shift
fi
testers=${TESTERS:-1}
if [ "$testers" -eq 1 ]; then
    "$bin/switchboard-loadtest" "${command[@]}" "${urls[@]}" --jwt-secret "$secret" "$@"
else
    # Several tester processes at once, each running the arguments as given (so the
    # totals are TESTERS times theirs), each `connect` from its own two source
    # addresses; their reports merged into one.
    tester_pids=()
    for k in $(seq 0 $((testers - 1))); do
        sources=()
        if [ "$scenario" = connect ]; then
            sources=(--source-ip "127.0.$((k + 1)).2" --source-ip "127.0.$((k + 1)).3")
        fi
        "$bin/switchboard-loadtest" "${command[@]}" "${urls[@]}" --jwt-secret "$secret" "$@" "${sources[@]}" \
            >"$logs/tester-$k.out" 2>"$logs/tester-$k.err" &
        tester_pids+=($!)
    done
    status=0
    for pid in "${tester_pids[@]}"; do wait "$pid" || status=1; done
    cat "$logs"/tester-*.err >&2
    "$bin/switchboard-loadtest" merge "$logs"/tester-*.out || status=1
    [ "$status" -eq 0 ] || echo "a tester failed (its summary is above)" >&2
fi
echo "redis: ${#redis_ports[@]} server(s), $(awk -v a="$cpu_before" -v b="$(redis_cpu)" 'BEGIN { printf "%.3f", b - a }') CPU seconds during the run" >&2

# The baseline beside it: a bare PUBLISH of a payload the size of an average negotiate
# message (two 3 KB SDPs, 16 candidates of ~200 B and two end-of-candidates: ~500 B) to
# a channel nobody hears, 200,000 times from 50 connections, on the first Redis server.
baseline=200000
payload=$(printf 'x%.0s' $(seq 500))
cpu_before=$(redis_cpu "$redis_port")
redis-benchmark -p "$redis_port" -n "$baseline" -q PUBLISH bench-local-baseline "$payload" >"$logs/baseline.log" 2>&1
cpu_after=$(redis_cpu "$redis_port")
awk -v a="$cpu_before" -v b="$cpu_after" -v n="$baseline" -v rate="$(tr '\r' '\n' <"$logs/baseline.log" | grep -o '[0-9.]* requests per second' | tail -1)" \
    'BEGIN { printf "redis-benchmark PUBLISH (500 B, no subscriber): %.2f CPU-µs of Redis per command, %s\n", (b - a) * 1e6 / n, rate }' >&2
