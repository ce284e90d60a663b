# Sourced by the scripts that start local servers (bench-local.sh,
# heaptrack-gateway.sh).

# Waits (at most 20 s) until something listens on 127.0.0.1:$1. On failure prints the
# logs in $2 (a directory of *.log files), if given.
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1${2:+; logs in $2}" >&2
    [ -z "${2:-}" ] || cat "$2"/*.log >&2
    return 1
}
