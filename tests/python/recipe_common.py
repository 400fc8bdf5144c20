"""Shared helpers for the kazoo recipe scripts run by crates/rzk/tests/kazoo_recipes.rs.

Every script takes `HOSTS BASE_PATH` (e.g. `127.0.0.1:2181 /recipes/lock-1234`), works only under BASE_PATH so
several scripts can share one server, prints what it checks, and exits non-zero with a `FAIL:` line on any
violation. Waits are bounded and named (`bounded_join`, `wait_event`); nothing sleeps to synchronise.
"""

import sys
import threading
import time
import traceback

from kazoo.client import KazooClient

# Generous bounds for a loaded 2-core machine; a healthy run takes a small fraction of each.
START_TIMEOUT = 20.0
STEP_TIMEOUT = 30.0
# Session timeout for clients that must NOT expire during a test (clamped by the server's maxSessionTimeout).
SAFE_SESSION_TIMEOUT = 10.0

_failures = []
_failures_lock = threading.Lock()


def parse_args(extra=()):
    """Returns (hosts, base_path, *extra) from argv; exits with usage on a mismatch."""
    names = ["HOSTS", "BASE_PATH", *extra]
    if len(sys.argv) != 1 + len(names):
        print("usage: %s %s" % (sys.argv[0], " ".join(names)), file=sys.stderr)
        sys.exit(2)
    return sys.argv[1:]


def log(message):
    print("[%8.3f] %s" % (time.monotonic() % 100000, message), flush=True)


def fail(message):
    """Records a violation (from any thread); `finish` turns it into a non-zero exit."""
    with _failures_lock:
        _failures.append(message)
    print("FAIL: %s" % message, flush=True)


def check(condition, message):
    if not condition:
        fail(message)
    return condition


def die(message):
    """A violation after which continuing makes no sense."""
    fail(message)
    finish()


def finish(ok_message="OK"):
    with _failures_lock:
        failures = list(_failures)
    if failures:
        print("%d violation(s):" % len(failures), flush=True)
        for failure in failures:
            print("  - %s" % failure, flush=True)
        sys.stdout.flush()
        # os._exit: kazoo threads of clients we could not stop must not keep the process alive.
        import os

        os._exit(1)
    print(ok_message, flush=True)
    sys.stdout.flush()
    import os

    os._exit(0)


def client(hosts, timeout=SAFE_SESSION_TIMEOUT):
    """A started KazooClient (its own connection and session)."""
    zk = KazooClient(hosts=hosts, timeout=timeout)
    zk.start(timeout=START_TIMEOUT)
    return zk


def close(zk):
    try:
        zk.stop()
        zk.close()
    except Exception as error:  # noqa: BLE001 - best effort at the end of a test
        log("closing a client: %r" % (error,))


def run_threads(targets, what, timeout=STEP_TIMEOUT):
    """Runs each callable in its own thread; an exception in one is a violation. Joins within `timeout`."""
    threads = []
    for index, target in enumerate(targets):

        def body(target=target, index=index):
            try:
                target()
            except Exception:  # noqa: BLE001 - reported as a violation with its traceback
                fail("%s: thread %d raised:\n%s" % (what, index, traceback.format_exc()))

        thread = threading.Thread(target=body, name="%s-%d" % (what, index), daemon=True)
        thread.start()
        threads.append(thread)
    bounded_join(threads, what, timeout)


def bounded_join(threads, what, timeout=STEP_TIMEOUT):
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        die("%s: threads %s still running after %.0f s" % (what, stuck, timeout))


def wait_event(event, what, timeout=STEP_TIMEOUT):
    if not event.wait(timeout):
        die("%s: did not happen within %.0f s" % (what, timeout))


def wait_children(zk, path, predicate, what, timeout=STEP_TIMEOUT):
    """Waits (with a child watch, not a sleep loop) until predicate(children of path) holds; returns them."""
    import time as _time

    deadline = _time.monotonic() + timeout
    while True:
        changed = threading.Event()
        children = zk.get_children(path, watch=lambda _event: changed.set())
        if predicate(children):
            return children
        remaining = deadline - _time.monotonic()
        if remaining <= 0 or not changed.wait(remaining):
            die("%s: children of %s are %s after %.0f s" % (what, path, sorted(children), timeout))
