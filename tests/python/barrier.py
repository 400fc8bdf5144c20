"""kazoo Barrier and DoubleBarrier across separate clients.

Barrier: a coordinator creates the barrier; WAITERS clients wait on it (each in its own thread). None may
return before the coordinator has removed it, and all must return (True) after the removal.

DoubleBarrier(num_clients=PARTIES): PARTIES clients each count themselves in and call enter(); no enter()
may return before all PARTIES have counted themselves in. Then each counts itself out and calls leave(); no
leave() may return before all PARTIES have counted themselves out. Both rounds run twice on the same path.
"""

import threading

from recipe_common import check, client, close, fail, finish, log, parse_args, run_threads, wait_children

WAITERS = 3
PARTIES = 3


def single_barrier(hosts, base):
    path = base + "/barrier"
    coordinator = client(hosts)
    coordinator.ensure_path(base)
    barrier = coordinator.Barrier(path)
    barrier.create()
    removed = threading.Event()
    waiting = threading.Semaphore(0)
    clients = [client(hosts) for _ in range(WAITERS)]

    def waiter(index):
        own = clients[index].Barrier(path)
        waiting.release()
        passed = own.wait(timeout=30)
        check(passed, "barrier waiter %d: wait() timed out" % index)
        check(removed.is_set(), "barrier waiter %d passed before the barrier was removed" % index)

    threads = []

    def remove_when_all_wait():
        for _ in range(WAITERS):
            if not waiting.acquire(timeout=30):
                fail("barrier: not every waiter started")
                return
        # Every waiter has been started; whether its exists-watch is set yet or not, it must not pass before this.
        removed.set()
        barrier.remove()

    targets = [lambda i=i: waiter(i) for i in range(WAITERS)] + [remove_when_all_wait]
    run_threads(targets, "barrier")
    for zk in clients + [coordinator]:
        close(zk)
    log("Barrier: %d waiters passed only after removal" % WAITERS)


def double_barrier(hosts, base, round_):
    path = base + "/double"
    observer = client(hosts)
    counts = {"in": 0, "out": 0}
    counts_lock = threading.Lock()
    clients = [client(hosts) for _ in range(PARTIES)]

    def party(index):
        barrier = clients[index].DoubleBarrier(path, PARTIES, identifier="party-%d-%d" % (round_, index))
        with counts_lock:
            counts["in"] += 1
        barrier.enter()
        with counts_lock:
            arrived = counts["in"]
        check(arrived == PARTIES, "round %d: party %d entered when only %d of %d had arrived" % (round_, index, arrived, PARTIES))
        with counts_lock:
            counts["out"] += 1
        barrier.leave()
        with counts_lock:
            left = counts["out"]
        check(left == PARTIES, "round %d: party %d left when only %d of %d were leaving" % (round_, index, left, PARTIES))

    run_threads([lambda i=i: party(i) for i in range(PARTIES)], "double barrier round %d" % round_)
    wait_children(observer, path, lambda nodes: nodes == [], "double barrier round %d cleanup" % round_)
    for zk in clients + [observer]:
        close(zk)
    log("DoubleBarrier round %d: %d parties entered and left together" % (round_, PARTIES))


def main():
    hosts, base = parse_args()
    single_barrier(hosts, base)
    for round_ in range(2):
        double_barrier(hosts, base, round_)
    finish("OK: Barrier and DoubleBarrier held")


if __name__ == "__main__":
    main()
