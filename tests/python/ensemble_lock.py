"""kazoo Lock across the members of an ensemble, with one member killed (SIGKILL) mid-way.

WORKERS clients, homed on the members in turn (see ensemble_common), take the same Lock ROUNDS times each.
Inside the lock a worker creates an ephemeral marker (someone else's marker = two holders), reads the shared
counter znode and writes it back incremented with the version it read, then removes the marker. Every command
is retried through connection losses; a retried write whose first attempt had in fact committed shows as
NodeExists / BadVersion, which is accepted only if the node holds exactly what this worker wrote.

Once READY_AT holds are done the script tells the test, which kills the victim member; workers keep taking
the lock meanwhile (none starts a hold past GATE_AT before the kill is confirmed). Checks: the clients homed
on the victim were suspended and reconnected to a survivor, no session was lost or changed, every worker's
ephemeral `alive` node is still there with its session as owner; the counter ends at exactly WORKERS*ROUNDS,
the marker never clashed, and the [enter, exit] intervals never overlap.
"""

import threading
import time

from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError

from ensemble_common import Tracked, parse_args, signal_ready, wait_killed
from recipe_common import STEP_TIMEOUT, check, die, fail, finish, log, run_threads

WORKERS = 6
ROUNDS = 8
READY_AT = 12
GATE_AT = 30


def main():
    members, base, victim, sync_dir = parse_args()
    lock_path, counter_path, marker_path = base + "/lock", base + "/counter", base + "/holder"
    survivor = (victim + 1) % len(members)
    setup = Tracked("setup", members, survivor, victim)
    setup.zk.retry(setup.zk.ensure_path, base)
    setup.zk.retry(setup.zk.create, counter_path, b"0")

    workers = [Tracked("worker-%d" % i, members, i % len(members), victim) for i in range(WORKERS)]
    for worker in workers:
        worker.create_alive(base)

    progress = threading.Condition()
    done = {"holds": 0}
    killed = threading.Event()
    intervals = []

    def hold(worker, lock, round_):
        zk = worker.zk
        token = ("%s/%d" % (worker.name, round_)).encode()
        if not lock.acquire(timeout=STEP_TIMEOUT):
            fail("%s round %d: acquire returned False" % (worker.name, round_))
            return
        try:
            entered = time.monotonic()
            try:
                zk.retry(zk.create, marker_path, token, ephemeral=True)
            except NodeExistsError:
                data, stat = zk.retry(zk.get, marker_path)
                if data != token or stat.ephemeralOwner != worker.session:
                    fail("%s holds the lock while the marker says %r" % (worker.name, data))
                    return
            data, stat = zk.retry(zk.get, counter_path)
            wanted = int(data) + 1
            try:
                zk.retry(zk.set, counter_path, str(wanted).encode(), version=stat.version)
            except BadVersionError:
                # Our first attempt committed before the connection broke, or someone else wrote.
                now, _ = zk.retry(zk.get, counter_path)
                check(int(now) == wanted, "%s: counter is %s under the lock, wrote %d" % (worker.name, now, wanted))
            try:
                zk.retry(zk.delete, marker_path)
            except NoNodeError:
                pass  # the first attempt committed
            left = time.monotonic()
        finally:
            lock.release()
        with progress:
            intervals.append((entered, left, worker.name))
            done["holds"] += 1
            progress.notify_all()

    def work(worker):
        lock = worker.zk.Lock(lock_path, identifier=worker.name)
        for round_ in range(ROUNDS):
            with progress:
                if done["holds"] >= GATE_AT and not killed.is_set():
                    if not progress.wait_for(killed.is_set, STEP_TIMEOUT * 2):
                        die("%s: the kill was not confirmed" % worker.name)
            hold(worker, lock, round_)

    threads_done = threading.Event()
    failure = []

    def run_workers():
        try:
            run_threads([lambda w=w: work(w) for w in workers], "lock workers", timeout=180)
        except SystemExit:  # pragma: no cover - die() exits the process
            raise
        except Exception as error:  # noqa: BLE001
            failure.append(error)
        threads_done.set()

    runner = threading.Thread(target=run_workers, daemon=True)
    runner.start()

    with progress:
        if not progress.wait_for(lambda: done["holds"] >= READY_AT, STEP_TIMEOUT * 2):
            die("only %d lock holds before the kill" % done["holds"])
    marks = {worker.name: worker.mark() for worker in workers}
    signal_ready(sync_dir, "ensemble_lock")
    wait_killed(sync_dir)
    with progress:
        at_kill = done["holds"]
        killed.set()
        progress.notify_all()
    log("member %d killed after %d lock holds" % (victim, at_kill))
    for worker in workers:
        worker.wait_recovered(marks[worker.name])

    if not threads_done.wait(240):
        die("lock workers did not finish")
    check(not failure, "running the workers: %s" % failure)
    check(at_kill < WORKERS * ROUNDS, "the kill came after the last hold (%d)" % at_kill)

    for worker in workers:
        worker.check_alive(base)
    setup.zk.retry(setup.zk.sync, counter_path)
    data, stat = setup.zk.retry(setup.zk.get, counter_path)
    expected = WORKERS * ROUNDS
    log("counter=%s dataVersion=%d after %d lock holds (%d before the kill)" % (data.decode(), stat.version, len(intervals), at_kill))
    check(int(data) == expected, "counter is %s, expected %d" % (data.decode(), expected))
    check(stat.version == expected, "counter dataVersion is %d, expected %d" % (stat.version, expected))
    check(len(intervals) == expected, "%d lock holds recorded, expected %d" % (len(intervals), expected))
    intervals.sort()
    for (enter_a, leave_a, who_a), (enter_b, leave_b, who_b) in zip(intervals, intervals[1:]):
        check(
            enter_b >= leave_a,
            "lock holds overlap: %s [%.6f, %.6f] and %s [%.6f, %.6f]" % (who_a, enter_a, leave_a, who_b, enter_b, leave_b),
        )
    check(setup.zk.retry(setup.zk.exists, marker_path) is None, "the in-lock marker was left behind")
    left = setup.zk.retry(setup.zk.get_children, lock_path)
    check(left == [], "lock nodes left behind: %s" % left)
    for worker in workers:
        worker.close()
    setup.close()
    finish(
        "OK: %d workers x %d rounds across members, member %d killed after %d holds; counter exact, no overlap, "
        "sessions and ephemerals kept" % (WORKERS, ROUNDS, victim, at_kill)
    )


if __name__ == "__main__":
    main()
