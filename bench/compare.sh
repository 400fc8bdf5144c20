#!/usr/bin/env bash
# Compare rzk with Apache ZooKeeper 3.8.0 on this machine (BENCHMARKS.md):
#   bench/compare.sh --quick            # ~6 minutes: every op, sessions {1,8,64} x in-flight {1,32}
#   bench/compare.sh                    # ~13 minutes: the same with longer cells
#   bench/compare.sh --ensemble         # also 3-member ensembles of each server
#   bench/compare.sh --million          # also 1,000,000 znodes: RSS, data size, restart time (slow)
# Other options are passed to bench/compare.py (--ops, --sessions, --inflight, --duration,
# --warmup, --out, --workdir); see `python3 bench/compare.py --help`.
# Needs Debian's zookeeper package (apt-get install -y zookeeper zookeeper-bin) and java.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
echo "[compare] cargo build --release -p rzk (target dir $target_dir)" >&2
cargo build --release -p rzk >&2
exec python3 bench/compare.py --rzk "$target_dir/release/rzk" "$@"
