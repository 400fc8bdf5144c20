#!/usr/bin/env bash
# Builds the binary release archive rzk-<version>-bin.tar.gz, laid out like Apache ZooKeeper's
# apache-zookeeper-<version>-bin.tar.gz so the Getting Started steps read the same:
#
#   rzk-<version>-bin/
#     bin/   rzk, zkServer.sh, zkCli.sh, zkCleanup.sh, zkEnv.sh
#     conf/  zoo_sample.cfg
#     README.md
#
# Usage: scripts/dist.sh [--out <dir>]      (default <dir>: target/dist under the repository)
#
#   RZK_BIN=<path>  package this rzk binary instead of building one with `cargo build --release`
#                   (tests pass their debug binary to skip a release build).
#
# Prints the archive's path on stdout; progress goes to stderr.
set -euo pipefail

repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
out="$repo/target/dist"

usage() {
    echo "Usage: $0 [--out <dir>]   (RZK_BIN=<path> packages an existing binary)" >&2
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        --out)
            [ "$#" -ge 2 ] || { usage; exit 1; }
            out="$2"
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "unknown argument: $1" >&2
            usage
            exit 1
            ;;
    esac
done

# The workspace version: the first `version = "..."` of [workspace.package] in Cargo.toml.
version="$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)"
if [ -z "$version" ]; then
    echo "cannot read the version from [workspace.package] in $repo/Cargo.toml" >&2
    exit 1
fi

if [ -n "${RZK_BIN:-}" ]; then
    binary="$RZK_BIN"
else
    echo "building rzk $version (release)..." >&2
    (cd "$repo" && cargo build --release --locked -p rzk >&2)
    binary="${CARGO_TARGET_DIR:-$repo/target}/release/rzk"
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
    echo "rzk binary not found or not executable: $binary" >&2
    exit 1
fi

name="rzk-$version-bin"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
staging="$(mktemp -d "${TMPDIR:-/tmp}/rzk-dist.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

root="$staging/$name"
mkdir -p "$root/bin" "$root/conf"
install -m 0755 "$binary" "$root/bin/rzk"
for script in zkServer.sh zkCli.sh zkCleanup.sh zkEnv.sh; do
    install -m 0755 "$repo/bin/$script" "$root/bin/$script"
done
install -m 0644 "$repo/conf/zoo_sample.cfg" "$root/conf/zoo_sample.cfg"
install -m 0644 "$repo/README.md" "$root/README.md"
if [ -f "$repo/LICENSE" ]; then
    install -m 0644 "$repo/LICENSE" "$root/LICENSE"
fi

archive="$out/$name.tar.gz"
# Owner and order fixed so the same inputs give the same listing.
tar --sort=name --owner=0 --group=0 --numeric-owner -czf "$archive.tmp" -C "$staging" "$name"
mv "$archive.tmp" "$archive"
echo "$archive"
