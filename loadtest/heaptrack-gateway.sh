#!/usr/bin/env bash
# Where an idle connection's memory goes: one gateway (cluster mode: its own
# redis-server and room service, release builds) under heaptrack, N connections from
# the `connect` scenario, each joined to a room of two; while they are held the gateway
# is killed, so that what heaptrack reports as leaked is what was live at that moment.
# Prints the gateway's RSS growth per connection and heaptrack's largest live
# allocations; the recording stays in $OUT (default: a new temporary directory).
#
#   cargo build --release --bins
#   loadtest/heaptrack-gateway.sh 3000 127.0.0.5
#
# The second argument is the tester's source address: use a fresh one for each run
# (the ports of the previous run's connections are still in TIME_WAIT). Needs heaptrack
# (Debian: apt-get install heaptrack). docs/benchmarks.md has the results.
set -euo pipefail
connections=${1:?usage: loadtest/heaptrack-gateway.sh CONNECTIONS SOURCE_IP}
source_ip=${2:?usage: loadtest/heaptrack-gateway.sh CONNECTIONS SOURCE_IP}
ulimit -n "$(ulimit -Hn)"
cd "$(dirname "$0")/.."
bin=target/release
base=${BASE_PORT:-16400}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
source loadtest/wait-port.sh

# Members of rooms on the gateway, from its metrics (the admin port; sampled every 2 s).
members() {
    exec 3<>"/dev/tcp/127.0.0.1/$((base + 20))"
    printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
    awk '$1 == "switchboard_gateway_room_members" { print int($2) } END { print 0 }' <&3 | head -1
    exec 3<&-
}

redis-server --port "$base" --bind 127.0.0.1 --save "" --appendonly no >"$out/redis.log" 2>&1 &
pids+=($!)
wait_port "$base" "$out"
"$bin/room-service" --redis-url "redis://127.0.0.1:$base" \
    --listen "127.0.0.1:$((base + 1))" --admin-listen "127.0.0.1:$((base + 2))" >"$out/room.log" 2>&1 &
pids+=($!)
wait_port $((base + 1)) "$out"
GATEWAY_REDIS__URL="redis://127.0.0.1:$base" GATEWAY_ROOM_SERVICE__URL="http://127.0.0.1:$((base + 1))" \
    GATEWAY_AUTH__JWT_SECRET=heaptrack-secret GATEWAY_LIMITS__CONNECTIONS_PER_IP_PER_SECOND=0 \
    GATEWAY_LIMITS__MAX_CONNECTIONS=1000000 \
    heaptrack -o "$out/heap" "$bin/gateway" --listen "127.0.0.1:$((base + 10))" \
    --admin-listen "127.0.0.1:$((base + 20))" >"$out/gateway.log" 2>&1 &
heaptrack=$!
pids+=("$heaptrack")
wait_port $((base + 10)) "$out"
gateway=$(pgrep -f -- "--listen 127.0.0.1:$((base + 10))" | grep -v "^$heaptrack$" | tail -1)
rss() { awk '/VmRSS/ { print $2 }' "/proc/$gateway/status"; }
before=$(rss)
# Held long enough for the ramp (1,000 a second) and more: the gateway is killed once
# it holds them all, and the tester then ends with an error, which is expected.
hold=$((connections / 1000 + 30))
"$bin/switchboard-loadtest" connect --gateway "ws://127.0.0.1:$((base + 10))/ws" --jwt-secret heaptrack-secret \
    --connections "$connections" --rate 1000 --hold "${hold}s" --source-ip "$source_ip" \
    >"$out/report.json" 2>"$out/tester.err" &
tester=$!
# Until every connection has joined its room (at most the hold).
for _ in $(seq $((hold * 10))); do
    [ "$(members)" -ge "$connections" ] && break
    sleep 0.1
done
[ "$(members)" -ge "$connections" ] || { echo "the gateway never held $connections members" >&2; exit 1; }
held=$(rss)
kill -KILL "$gateway"
# heaptrack writes its recording out once the gateway is gone.
wait "$heaptrack" 2>/dev/null || true
kill "$tester" 2>/dev/null || true
echo "gateway RSS $before -> $held KiB: $(awk -v a="$before" -v b="$held" -v n="$connections" 'BEGIN { printf "%.2f", (b - a) / n }') KiB per connection"
heaptrack_print "$out/heap".*zst --print-peaks 0 --print-allocators 0 --print-temporary 0 --print-leaks 1 \
    --peak-limit 25 --sub-peak-limit 0 2>/dev/null | grep -A3 "leaked over" | grep -v "^--$"
echo "recording: $out"
