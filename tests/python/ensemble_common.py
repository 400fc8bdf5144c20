"""Helpers for the ensemble_*.py scripts run by crates/rzk/tests/ensemble_clients.rs.

Every script takes `MEMBERS BASE_PATH VICTIM SYNC_DIR`: MEMBERS is the comma-separated client addresses of the
ensemble's members in member order, VICTIM the index (into MEMBERS) of the member the test kills with SIGKILL
mid-way. The script writes `SYNC_DIR/<script>.ready` when it is mid-way, and waits (bounded) for the test to
create `SYNC_DIR/killed` once the member is dead. It then checks that its clients recovered and goes on.

Clients are "homed" on one member: a client homed on a member that stays up talks to that member only
(`hosts="127.0.0.1:p"`); a client homed on the victim gets the full list starting with the victim (kazoo's host
randomisation off), so after the kill it must move to a survivor, with its session (kazoo reconnects with its
session id and password). The helpers record every state a client goes through, so a script can check that no
session was LOST and that the victim's clients were SUSPENDED and then CONNECTED again.
"""

import os
import threading
import time

from kazoo.client import KazooClient, KazooState

from recipe_common import SAFE_SESSION_TIMEOUT, START_TIMEOUT, STEP_TIMEOUT, check, die, fail, log

# How long a script waits for the test to kill the victim, and clients to come back after it.
KILL_TIMEOUT = 60.0
RECOVERY_TIMEOUT = 60.0
# Commands retried through connection losses (an election in progress, a member gone): a bounded deadline.
COMMAND_RETRY = {"max_tries": -1, "delay": 0.05, "backoff": 2, "max_delay": 1.0, "deadline": STEP_TIMEOUT}
# Polling interval for the test's marker file (a file, not a sleep, synchronises the two processes).
FILE_POLL = 0.02


def parse_args():
    import sys

    if len(sys.argv) != 5:
        print("usage: %s MEMBERS BASE_PATH VICTIM SYNC_DIR" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    members = sys.argv[1].split(",")
    victim = int(sys.argv[3])
    if not 0 <= victim < len(members):
        print("VICTIM %d is not an index into %s" % (victim, members), file=sys.stderr)
        sys.exit(2)
    return members, sys.argv[2], victim, sys.argv[4]


def hosts_for(members, home, victim):
    """The host string of a client homed on member `home`."""
    if home == victim:
        return ",".join(members[home:] + members[:home])
    return members[home]


class Tracked:
    """A started KazooClient homed on one member, with its session id and every state it went through."""

    def __init__(self, name, members, home, victim):
        self.name = name
        self.home = home
        self.on_victim = home == victim
        self.hosts = hosts_for(members, home, victim)
        self.states = []
        self.closing = False
        self.changed = threading.Condition()
        self.zk = KazooClient(
            hosts=self.hosts,
            timeout=SAFE_SESSION_TIMEOUT,
            randomize_hosts=False,
            command_retry=COMMAND_RETRY,
        )
        self.zk.add_listener(self._listen)
        self.zk.start(timeout=START_TIMEOUT)
        self.session = self.zk.client_id[0]
        log("%s: session 0x%x on %s" % (name, self.session, self.hosts))

    def _listen(self, state):
        with self.changed:
            self.states.append(state)
            self.changed.notify_all()
        if state == KazooState.LOST and not self.closing:
            fail("%s: session 0x%x LOST" % (self.name, self.session))

    def mark(self):
        """Position in the state history, to look at what happens after it."""
        with self.changed:
            return len(self.states)

    def wait_recovered(self, since):
        """For a client on the victim: SUSPENDED after `since`, then CONNECTED again. For the others: CONNECTED
        now (they may have been suspended while the ensemble elected). Then: same session."""
        deadline = time.monotonic() + RECOVERY_TIMEOUT

        def recovered():
            after = self.states[since:]
            if self.on_victim and KazooState.SUSPENDED not in after:
                return False
            return self.zk.state == KazooState.CONNECTED and (not after or after[-1] == KazooState.CONNECTED)

        with self.changed:
            if not self.changed.wait_for(recovered, max(0.0, deadline - time.monotonic())):
                die(
                    "%s (homed on member %d, hosts %s): not reconnected within %.0f s; states since the kill: %s"
                    % (self.name, self.home, self.hosts, RECOVERY_TIMEOUT, self.states[since:])
                )
        check(
            self.zk.client_id[0] == self.session,
            "%s: session changed from 0x%x to 0x%x" % (self.name, self.session, self.zk.client_id[0]),
        )
        log("%s: connected with session 0x%x; states since the kill: %s" % (self.name, self.session, self.states[since:]))

    def create_alive(self, base):
        """An ephemeral `base/alive/<name>`: it must survive the kill (the session is kept)."""
        self.zk.retry(self.zk.ensure_path, base + "/alive")
        self.zk.retry(self.zk.create, "%s/alive/%s" % (base, self.name), b"", ephemeral=True)

    def check_alive(self, base):
        path = "%s/alive/%s" % (base, self.name)
        self.zk.retry(self.zk.sync, path)
        stat = self.zk.retry(self.zk.exists, path)
        if check(stat is not None, "%s: its ephemeral %s is gone" % (self.name, path)):
            check(
                stat.ephemeralOwner == self.session,
                "%s: %s is owned by 0x%x, not by its session 0x%x" % (self.name, path, stat.ephemeralOwner, self.session),
            )

    def close(self):
        self.closing = True
        try:
            self.zk.stop()
            self.zk.close()
        except Exception as error:  # noqa: BLE001 - best effort at the end of a test
            log("closing %s: %r" % (self.name, error))


def signal_ready(sync_dir, script):
    path = os.path.join(sync_dir, script + ".ready")
    with open(path + ".tmp", "w") as handle:
        handle.write("ready\n")
    os.rename(path + ".tmp", path)
    log("mid-way: wrote %s" % path)


def wait_killed(sync_dir):
    """Waits (bounded) until the test has killed the victim and created SYNC_DIR/killed."""
    path = os.path.join(sync_dir, "killed")
    deadline = time.monotonic() + KILL_TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            die("the test did not kill the victim within %.0f s (no %s)" % (KILL_TIMEOUT, path))
        time.sleep(FILE_POLL)
    log("the victim is dead")
