#!/usr/bin/env bash
# zkCli.sh for rzk: runs `rzk cli` with the same arguments as ZooKeeper's zkCli.sh
# (e.g. `zkCli.sh -server 127.0.0.1:2181 ls /`, or interactive without a command).

ZOOBIN="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# shellcheck source=zkEnv.sh
. "$ZOOBIN/zkEnv.sh"

RZK="$(zk_find_rzk)" || exit 1
exec "$RZK" cli "$@"
