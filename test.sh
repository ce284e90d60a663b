#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine too: installs what is missing
# (redis-server; the tests start their own on free loopback ports), then checks
# formatting and lints, and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")"

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

have cargo || { echo "cargo is missing: install Rust (https://rustup.rs) first" >&2; exit 1; }
if ! have redis-server; then
    echo "installing redis-server (the tests start their own instances)"
    apt_install redis-server
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
