#!/usr/bin/env bash
# Compare rzk with Apache ZooKeeper 3.8.0 on this machine (BENCHMARKS.md):
#   bench/compare.sh --quick            # ~6 minutes: every op, sessions {1,8,64} x in-flight {1,32}
#   bench/compare.sh                    # ~13 minutes: the same with longer cells
#   bench/compare.sh --ensemble         # also 3-member ensembles of each server
#   bench/compare.sh --million          # also 1,000,000 znodes: RSS, data size, restart time (slow)
#   bench/compare.sh --sync-write-only  # ~5 minutes: one session's synchronous create against one fsync and its floor, 6 rounds
# Other options are passed to bench/compare.py (--ops, --sessions, --inflight, --repeat, --duration,
# --warmup, --out, --workdir); see `python3 bench/compare.py --help`.
# Installs Debian's zookeeper package (apt-get install -y zookeeper zookeeper-bin, with java) when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Apache ZooKeeper 3.8.0 from Debian, installed when missing (as root, or through sudo).
if [ ! -e /usr/share/zookeeper/bin/zkServer.sh ] || ! command -v java >/dev/null; then
    echo "[compare] installing Debian's zookeeper and zookeeper-bin (ZooKeeper 3.8.0)" >&2
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq zookeeper zookeeper-bin >&2
fi

target_dir="${CARGO_TARGET_DIR:-target}"
echo "[compare] cargo build --release -p rzk --bin rzk --example fsync_floor_server (target dir $target_dir)" >&2
cargo build --release -p rzk --bin rzk --example fsync_floor_server >&2
# Absolute: compare.py starts the servers from their own working directories.
exec python3 bench/compare.py --rzk "$(realpath "$target_dir/release/rzk")" \
    --floor-server "$(realpath "$target_dir/release/examples/fsync_floor_server")" "$@"
