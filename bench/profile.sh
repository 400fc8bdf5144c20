#!/usr/bin/env bash
# Where the server CPU goes in one benchmark cell, rzk against Apache ZooKeeper 3.8.0
# (BENCHMARKS.md, "Profiles"): perf samples each server under the same `rzk bench` load and
# bench/cpu_profile.py splits the CPU time per operation into kernel and user parts and draws a
# flame graph for each server.
#   bench/profile.sh --op create --sessions 1 --inflight 1 --out DIR
#   bench/profile.sh --op set --sessions 8 --inflight 1 --ensemble
# Other options: `python3 bench/cpu_profile.py --help`.
# Installs what is missing: perf (Debian's linux-perf), inferno (cargo install inferno, for the
# collapsed stacks and the flame graphs) and ZooKeeper (as bench/compare.sh does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
missing=()
command -v perf >/dev/null || missing+=(linux-perf)
if [ ! -e /usr/share/zookeeper/bin/zkServer.sh ] || ! command -v java >/dev/null; then
    missing+=(zookeeper zookeeper-bin)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "[profile] apt-get install ${missing[*]}" >&2
    $sudo_cmd apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
fi
if ! command -v inferno-flamegraph >/dev/null; then
    echo "[profile] cargo install inferno --locked" >&2
    cargo install inferno --locked >&2
fi
# perf needs to sample other processes of this user, kernel stacks included.
if [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt -1 ]; then
    echo "[profile] kernel.perf_event_paranoid=-1 (needed to sample the servers' kernel stacks)" >&2
    $sudo_cmd sysctl -q kernel.perf_event_paranoid=-1 >&2
fi

target_dir="${CARGO_TARGET_DIR:-target}"
echo "[profile] cargo build --release -p rzk (target dir $target_dir)" >&2
cargo build --release -p rzk >&2
exec python3 bench/cpu_profile.py --rzk "$(realpath "$target_dir/release/rzk")" "$@"
