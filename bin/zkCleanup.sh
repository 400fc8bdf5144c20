#!/usr/bin/env bash
# zkCleanup.sh for rzk: removes old snapshots and transaction logs, keeping the newest ones, like ZooKeeper's
# zkCleanup.sh (PurgeTxnLog):
#
#   zkCleanup.sh -n <count>                        directories taken from the config (dataLogDir, dataDir)
#   zkCleanup.sh <dataLogDir> [<snapDir>] -n <count>  directories given explicitly
#
# <count> must be at least 3. Runs `rzk cleanup <dataLogDir> [<snapDir>] -n <count>`.

ZOOBIN="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# shellcheck source=zkEnv.sh
. "$ZOOBIN/zkEnv.sh"

RZK="$(zk_find_rzk)" || exit 1

case "${1:-}" in
    "" | -*)
        # Only options: take the directories from the config, as ZooKeeper's script does.
        if [ ! -f "$ZOOCFG" ]; then
            echo "Config file $ZOOCFG not found; give the directories: $0 <dataLogDir> [<snapDir>] -n <count>" >&2
            exit 1
        fi
        ZOODATADIR="$(zk_cfg_value dataDir "$ZOOCFG")"
        ZOODATALOGDIR="$(zk_cfg_value dataLogDir "$ZOOCFG")"
        if [ -z "$ZOODATADIR" ]; then
            echo "dataDir is not set in $ZOOCFG" >&2
            exit 1
        fi
        if [ -z "$ZOODATALOGDIR" ]; then
            exec "$RZK" cleanup "$ZOODATADIR" "$@"
        fi
        exec "$RZK" cleanup "$ZOODATALOGDIR" "$ZOODATADIR" "$@"
        ;;
    *)
        exec "$RZK" cleanup "$@"
        ;;
esac
