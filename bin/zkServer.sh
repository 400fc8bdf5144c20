#!/usr/bin/env bash
# zkServer.sh for rzk: the commands, messages, pid file and exit codes of Apache ZooKeeper's zkServer.sh, with
# the rzk binary in place of the JVM.
#
#   zkServer.sh [--config <conf-dir>] {start|start-foreground|stop|restart|status|print-cmd|version} [cfg]
#
# `cfg` is a file name inside the config directory, or a path. See zkEnv.sh for the environment variables.
#
# Differences from ZooKeeper's script, all in the direction of saying more:
# - `start` waits until the server answers (or exits) instead of sleeping 1 s, and when it fails to start it
#   prints the tail of its output file, which names the bad setting.
# - `stop` waits for the process to exit (so `restart` never races the old server for the port) and removes a
#   stale pid file quietly.
# - An unknown command prints the usage and exits 1 (ZooKeeper exits 0).

ZOOBIN="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# shellcheck source=zkEnv.sh
. "$ZOOBIN/zkEnv.sh"

# How long `start` watches the new process before declaring it started; `stop` waits for an exit.
ZOO_START_WAIT_SECONDS="${ZOO_START_WAIT_SECONDS:-5}"
ZOO_STOP_TIMEOUT_SECONDS="${ZOO_STOP_TIMEOUT_SECONDS:-30}"

usage() {
    echo "Usage: $0 [--config <conf-dir>] {start|start-foreground|stop|version|restart|status|print-cmd}" >&2
}

command="${1:-}"
if [ -n "${2:-}" ]; then
    case "$2" in
        */*) ZOOCFG="$2" ;;
        *) ZOOCFG="$ZOOCFGDIR/$2" ;;
    esac
fi

case "$command" in
    start | start-foreground | stop | restart | status | print-cmd | version) ;;
    *)
        usage
        exit 1
        ;;
esac

# One line in the shape of ZooKeeper's `Apache ZooKeeper, version 3.8.0 <build date>`.
if [ "$command" = "version" ]; then
    RZK="$(zk_find_rzk)" || exit 1
    RZK_VERSION="$("$RZK" --version)" || {
        echo "$RZK --version failed; is it an rzk binary? Set RZK_BIN=/path/to/rzk." >&2
        exit 1
    }
    echo "rzk, version ${RZK_VERSION#rzk } (ZooKeeper 3.8/3.9 wire compatible)"
    exit 0
fi

echo "Using config: $ZOOCFG" >&2
if [ ! -f "$ZOOCFG" ]; then
    echo "Config file $ZOOCFG not found. Create it (e.g. cp $ZOOKEEPER_PREFIX/conf/zoo_sample.cfg $ZOOKEEPER_PREFIX/conf/zoo.cfg)," >&2
    echo "or name another: $0 $command /path/to/zoo.cfg (or set ZOOCFGDIR / ZOOCFG)." >&2
    exit 1
fi

ZOO_DATADIR="$(zk_cfg_value dataDir "$ZOOCFG")"
if [ -z "${ZOOPIDFILE:-}" ]; then
    if [ -z "$ZOO_DATADIR" ]; then
        echo "dataDir is not set in $ZOOCFG; add dataDir=/var/lib/zookeeper (it holds the data and the pid file)" >&2
        exit 1
    fi
    mkdir -p "$ZOO_DATADIR"
    ZOOPIDFILE="$ZOO_DATADIR/zookeeper_server.pid"
else
    mkdir -p "$(dirname "$ZOOPIDFILE")"
fi

mkdir -p "$ZOO_LOG_DIR" 2>/dev/null
ZOO_USER="${USER:-$(id -un 2>/dev/null || echo unknown)}"
ZOO_HOST="${HOSTNAME:-$(hostname 2>/dev/null || echo localhost)}"
_ZOO_DAEMON_OUT="$ZOO_LOG_DIR/zookeeper-$ZOO_USER-server-$ZOO_HOST.out"

# Sets ZK_CLIENT_ADDRESS and ZK_CLIENT_PORT as zkServer.sh status finds them: clientPortAddress/clientPort,
# else the client part of this server's server.N line (found through dataDir/myid).
find_client_address() {
    ZK_CLIENT_ADDRESS="$(zk_cfg_value clientPortAddress "$ZOOCFG")"
    ZK_CLIENT_PORT="$(zk_cfg_value clientPort "$ZOOCFG")"
    if ! [[ "$ZK_CLIENT_PORT" =~ ^[0-9]+$ ]] || [ "$ZK_CLIENT_PORT" = 0 ]; then
        ZK_CLIENT_PORT=""
        local myid client_part
        myid="$(head -n 1 "$ZOO_DATADIR/myid" 2>/dev/null | tr -d '[:space:]')"
        if ! [[ "$myid" =~ ^[0-9]+$ ]]; then
            echo "myid could not be determined, will not able to locate clientPort in the server configs."
        else
            client_part="$(zk_cfg_value "server.$myid" "$ZOOCFG")"
            case "$client_part" in
                *";"*)
                    client_part="${client_part##*;}"
                    if [[ "$client_part" =~ ^\[(.*)\]:([0-9]+)$ ]]; then
                        ZK_CLIENT_ADDRESS="${BASH_REMATCH[1]}"
                        ZK_CLIENT_PORT="${BASH_REMATCH[2]}"
                    elif [[ "$client_part" =~ ^(.*):([0-9]+)$ ]]; then
                        ZK_CLIENT_ADDRESS="${BASH_REMATCH[1]}"
                        ZK_CLIENT_PORT="${BASH_REMATCH[2]}"
                    elif [[ "$client_part" =~ ^[0-9]+$ ]]; then
                        ZK_CLIENT_PORT="$client_part"
                    fi
                    ;;
                *) echo "Client port not found in the server configs" ;;
            esac
        fi
    fi
    ZK_CLIENT_ADDRESS="${ZK_CLIENT_ADDRESS:-localhost}"
}

# Prints the server's reply to a four-letter word ($1) using bash's /dev/tcp, bounded to 5 s.
four_letter() {
    local host="$ZK_CLIENT_ADDRESS"
    # Connect where a wildcard listener can be reached; "localhost" may resolve to ::1 first.
    case "$host" in
        localhost | 0.0.0.0) host=127.0.0.1 ;;
        ::) host=::1 ;;
    esac
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "%s" "$2" >&3 && cat <&3' "$host" "$ZK_CLIENT_PORT" "$1" 2>/dev/null
}

# 0 if the pid file names a live process (its pid in $PID).
running_pid() {
    PID=""
    [ -f "$ZOOPIDFILE" ] || return 1
    PID="$(tr -d '[:space:]' <"$ZOOPIDFILE")"
    [[ "$PID" =~ ^[0-9]+$ ]] && kill -0 "$PID" 2>/dev/null
}

start() {
    echo -n "Starting zookeeper ... "
    if running_pid; then
        echo "already running as process $PID."
        exit 1
    fi
    local rzk
    rzk="$(zk_find_rzk)" || {
        echo "FAILED TO START"
        exit 1
    }
    nohup "$rzk" server "$ZOOCFG" >"$_ZOO_DAEMON_OUT" 2>&1 </dev/null &
    local pid=$!
    if ! echo -n "$pid" >"$ZOOPIDFILE"; then
        echo "FAILED TO WRITE PID"
        exit 1
    fi
    find_client_address >/dev/null
    # Poll: started once srvr answers; failed if the process exits; after the wait, alive counts as started
    # (an ensemble member may not serve until a quorum forms).
    local deadline=$((SECONDS + ZOO_START_WAIT_SECONDS))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        if [ -n "$ZK_CLIENT_PORT" ] && four_letter srvr | grep -q '^Mode:'; then
            break
        fi
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo STARTED
    else
        rm -f "$ZOOPIDFILE"
        echo FAILED TO START
        echo "Last lines of $_ZOO_DAEMON_OUT:" >&2
        tail -n 20 "$_ZOO_DAEMON_OUT" >&2
        exit 1
    fi
}

stop() {
    echo -n "Stopping zookeeper ... "
    if [ ! -f "$ZOOPIDFILE" ]; then
        echo "no zookeeper to stop (could not find file $ZOOPIDFILE)"
        return 0
    fi
    if running_pid; then
        kill "$PID" 2>/dev/null
        local deadline=$((SECONDS + ZOO_STOP_TIMEOUT_SECONDS))
        while kill -0 "$PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.1
        done
        if kill -0 "$PID" 2>/dev/null; then
            echo -n "(no exit after ${ZOO_STOP_TIMEOUT_SECONDS}s, sending SIGKILL) "
            kill -9 "$PID" 2>/dev/null
        fi
    fi
    rm -f "$ZOOPIDFILE"
    echo STOPPED
}

status() {
    find_client_address
    if [ -z "$ZK_CLIENT_PORT" ]; then
        echo "Unable to find either secure or unsecure client port in any configs. Terminating."
        exit 1
    fi
    echo "Client port found: $ZK_CLIENT_PORT. Client address: $ZK_CLIENT_ADDRESS. Client SSL: false."
    local mode
    mode="$(four_letter srvr | grep Mode)"
    if [ -z "$mode" ]; then
        echo "Error contacting service. It is probably not running."
        exit 1
    fi
    echo "$mode"
    exit 0
}

case "$command" in
    start)
        start
        ;;
    start-foreground)
        RZK="$(zk_find_rzk)" || exit 1
        if [ -n "${ZOO_NOEXEC:-}" ]; then
            "$RZK" server "$ZOOCFG"
        else
            exec "$RZK" server "$ZOOCFG"
        fi
        ;;
    print-cmd)
        RZK="$(zk_find_rzk)" || exit 1
        echo "\"$RZK\" server \"$ZOOCFG\" > \"$_ZOO_DAEMON_OUT\" 2>&1 < /dev/null"
        ;;
    stop)
        stop
        exit 0
        ;;
    restart)
        stop
        start
        ;;
    status)
        status
        ;;
esac
