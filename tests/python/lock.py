"""kazoo Lock: mutual exclusion across separate clients.

CLIENTS clients (one KazooClient each, one thread each) take the same Lock ROUNDS times. Inside the lock each
one creates an ephemeral marker (NodeExists = someone else is inside too), reads the shared counter znode and
writes it back incremented WITHOUT a version check (a lost update would show in the total), then removes the
marker. Checks: the counter ends at exactly CLIENTS*ROUNDS with dataVersion CLIENTS*ROUNDS, the marker never
clashed, and the [enter, exit] intervals measured on one monotonic clock never overlap.
"""

import threading
import time

from kazoo.exceptions import NodeExistsError

from recipe_common import check, client, close, fail, finish, log, parse_args, run_threads

CLIENTS = 4
ROUNDS = 12


def main():
    hosts, base = parse_args()
    lock_path, counter_path, marker_path = base + "/lock", base + "/counter", base + "/holder"
    setup = client(hosts)
    setup.ensure_path(base)
    setup.create(counter_path, b"0")

    intervals = []
    intervals_lock = threading.Lock()

    def worker(index):
        zk = client(hosts)
        lock = zk.Lock(lock_path, identifier="worker-%d" % index)
        try:
            for round_ in range(ROUNDS):
                if not lock.acquire(timeout=30):
                    fail("worker %d round %d: acquire returned False" % (index, round_))
                    return
                try:
                    entered = time.monotonic()
                    try:
                        zk.create(marker_path, str(index).encode(), ephemeral=True)
                    except NodeExistsError:
                        holder, _ = zk.get(marker_path)
                        fail("worker %d holds the lock while worker %s's marker exists" % (index, holder.decode()))
                        continue
                    data, _ = zk.get(counter_path)
                    zk.set(counter_path, str(int(data) + 1).encode())
                    zk.delete(marker_path)
                    left = time.monotonic()
                finally:
                    lock.release()
                with intervals_lock:
                    intervals.append((entered, left, index))
        finally:
            close(zk)

    run_threads([lambda i=i: worker(i) for i in range(CLIENTS)], "lock workers", timeout=90)

    data, stat = setup.get(counter_path)
    expected = CLIENTS * ROUNDS
    log("counter=%s dataVersion=%d after %d lock holds" % (data.decode(), stat.version, len(intervals)))
    check(int(data) == expected, "counter is %s, expected %d (lost updates)" % (data.decode(), expected))
    check(stat.version == expected, "counter dataVersion is %d, expected %d" % (stat.version, expected))
    check(len(intervals) == expected, "%d lock holds recorded, expected %d" % (len(intervals), expected))
    intervals.sort()
    for (enter_a, leave_a, who_a), (enter_b, leave_b, who_b) in zip(intervals, intervals[1:]):
        check(
            enter_b >= leave_a,
            "lock holds overlap: worker %d [%.6f, %.6f] and worker %d [%.6f, %.6f]"
            % (who_a, enter_a, leave_a, who_b, enter_b, leave_b),
        )
    check(setup.exists(marker_path) is None, "the in-lock marker was left behind")
    check(setup.get_children(lock_path) == [], "lock nodes left behind: %s" % setup.get_children(lock_path))
    close(setup)
    finish("OK: %d clients x %d rounds, counter exact, no overlapping holds" % (CLIENTS, ROUNDS))


if __name__ == "__main__":
    main()
