#!/usr/bin/env bash
# Environment shared by rzk's zkServer.sh, zkCli.sh and zkCleanup.sh (sourced, not run), mirroring Apache
# ZooKeeper's zkEnv.sh so existing habits and wrappers keep working:
#
#   ZOOCFGDIR    directory of the config (default: ../conf next to this script, or $ZOOKEEPER_CONF if set)
#   ZOOCFG       config file name inside ZOOCFGDIR, or an absolute path (default: zoo.cfg)
#   ZOO_LOG_DIR  where zkServer.sh start writes the server's output (default: ../logs next to this script)
#   ZOOPIDFILE   pid file (default: <dataDir>/zookeeper_server.pid, decided in zkServer.sh)
#   RZK_BIN      the rzk binary; otherwise found next to this script, then in ../target/release,
#                ../target/debug, then on PATH.
#
# `--config <conf-dir>` as the first arguments of a script sets ZOOCFGDIR, as in ZooKeeper.

# Resolve symlinks so that a link to this script from /usr/local/bin still finds its siblings.
ZOOBINDIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
ZOOKEEPER_PREFIX="$(cd "$ZOOBINDIR/.." && pwd)"

if [ "$#" -gt 1 ] && [ "$1" = "--config" ]; then
    ZOOCFGDIR="$2"
    shift 2
fi

if [ -z "${ZOOCFGDIR:-}" ]; then
    if [ -n "${ZOOKEEPER_CONF:-}" ]; then
        ZOOCFGDIR="$ZOOKEEPER_CONF"
    else
        ZOOCFGDIR="$ZOOKEEPER_PREFIX/conf"
    fi
fi

ZOOCFG="${ZOOCFG:-zoo.cfg}"
case "$ZOOCFG" in
    /*) ;;
    *) ZOOCFG="$ZOOCFGDIR/$ZOOCFG" ;;
esac

ZOO_LOG_DIR="${ZOO_LOG_DIR:-$ZOOKEEPER_PREFIX/logs}"

# Finds the rzk binary; prints its path, or an explanation on stderr and returns 1.
zk_find_rzk() {
    local candidate
    if [ -n "${RZK_BIN:-}" ]; then
        if [ -x "$RZK_BIN" ]; then
            echo "$RZK_BIN"
            return 0
        fi
        echo "RZK_BIN=$RZK_BIN is not an executable file" >&2
        return 1
    fi
    for candidate in "$ZOOBINDIR/rzk" "$ZOOKEEPER_PREFIX/target/release/rzk" "$ZOOKEEPER_PREFIX/target/debug/rzk"; do
        if [ -f "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    if candidate="$(command -v rzk 2>/dev/null)"; then
        echo "$candidate"
        return 0
    fi
    {
        echo "rzk binary not found. Looked for:"
        echo "  $ZOOBINDIR/rzk"
        echo "  $ZOOKEEPER_PREFIX/target/release/rzk"
        echo "  $ZOOKEEPER_PREFIX/target/debug/rzk"
        echo "  rzk on PATH"
        echo "Build it with \`cargo build --release\` in $ZOOKEEPER_PREFIX, or set RZK_BIN=/path/to/rzk."
    } >&2
    return 1
}

# Prints the last value of `key` in config file $2, the way java.util.Properties reads `key=value`,
# `key: value` and `key value` lines (comments and continuations aside). Empty if absent.
zk_cfg_value() {
    local key="$1" file="$2" escaped
    escaped="$(printf '%s' "$key" | sed -e 's/[.[\*^$]/\\&/g')"
    sed -n -E "s/^[[:space:]]*${escaped}[[:space:]]*[=:[:space:]][[:space:]]*(.*)$/\\1/p" "$file" 2>/dev/null \
        | tail -n 1 | sed -e 's/[[:space:]]*$//' -e 's/\r$//'
}
