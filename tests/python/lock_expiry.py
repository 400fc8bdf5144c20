"""kazoo Lock held by a session that expires: the lock is freed by the expiry, not before, not much after.

A separate python process (`lock_expiry.py HOSTS BASE holder LOCK_PATH`) takes the Lock with a short session
timeout (HOLDER_TIMEOUT, clamped by the server) and reports its negotiated timeout. Two variants, each on its
own lock path, run side by side:
- stop: the holder is SIGSTOPped. Its TCP connection stays open but its heartbeats stop, so the server must
  expire the session on its own clock.
- kill: the holder is SIGKILLed. Its connection drops at once, but the session (and the lock node) must
  survive until the session timeout passes.
In both, a contender (another client, long session) checks right away that the lock is still held
(non-blocking acquire fails), then blocks on acquire: it must get the lock no sooner than about half the
negotiated timeout (the holder's last heartbeat was at most a third of it before the signal) and no later
than timeout + EXPIRY_SLACK seconds.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time

from kazoo.exceptions import LockTimeout

from recipe_common import STEP_TIMEOUT, check, client, close, die, fail, finish, log, run_threads

HOLDER_TIMEOUT = 4.0
# Rounding of expiry to the server's tick, the contender's watch round trip, and a loaded machine.
EXPIRY_SLACK = 6.0


def capture_negotiated_timeout():
    """kazoo 2.11 does not keep the negotiated session timeout; its private `_connect` returns
    (read_timeout = 2/3 of it, connect_timeout) in ms, so record it from there."""
    from kazoo.protocol.connection import ConnectionHandler

    negotiated = []
    original = ConnectionHandler._connect

    def _connect(self, *args, **kwargs):
        read_timeout, connect_timeout = original(self, *args, **kwargs)
        negotiated.append(round(read_timeout * 3 / 2))
        return read_timeout, connect_timeout

    ConnectionHandler._connect = _connect
    return negotiated


def holder(hosts, lock_path):
    negotiated = capture_negotiated_timeout()
    zk = client(hosts, timeout=HOLDER_TIMEOUT)
    lock = zk.Lock(lock_path, identifier="holder")
    if not lock.acquire(timeout=STEP_TIMEOUT):
        print("holder: could not acquire", flush=True)
        os._exit(1)
    print("ACQUIRED session=0x%x timeout_ms=%d" % (zk.client_id[0], negotiated[-1]), flush=True)
    # Hold until killed (bounded, in case the parent died).
    threading.Event().wait(120)
    os._exit(0)


def start_holder(hosts, base, lock_path):
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), hosts, base, "holder", lock_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = queue.Queue()

    def pump():
        for line in child.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            child.kill()
            die("holder for %s did not report the lock within %.0f s" % (lock_path, STEP_TIMEOUT))
        if line is None:
            die("holder for %s exited (%s) before reporting the lock" % (lock_path, child.wait()))
        log("holder %s: %s" % (lock_path, line))
        if line.startswith("ACQUIRED"):
            fields = dict(part.split("=") for part in line.split()[1:])
            return child, int(fields["timeout_ms"]) / 1000.0


def variant(hosts, base, how):
    lock_path = "%s/lock-%s" % (base, how)
    contender_zk = client(hosts)
    child, timeout = start_holder(hosts, base, lock_path)
    lock = contender_zk.Lock(lock_path, identifier="contender-" + how)
    try:
        check(lock.contenders() == ["holder"], "%s: contenders before the signal: %s" % (how, lock.contenders()))
        os.kill(child.pid, signal.SIGSTOP if how == "stop" else signal.SIGKILL)
        signalled = time.monotonic()
        probe = lock.acquire(blocking=False)
        probe_after = time.monotonic() - signalled
        if not check(not probe, "%s: lock acquired %.3f s after the holder was signalled: the session ended early" % (how, probe_after)):
            return
        try:
            got = lock.acquire(timeout=timeout + EXPIRY_SLACK)
        except LockTimeout:
            got = False
        elapsed = time.monotonic() - signalled
        log("%s: negotiated timeout %.1f s, lock passed %.3f s after the signal" % (how, timeout, elapsed))
        if not check(got, "%s: lock not acquired within timeout %.1f s + %.1f s after the holder was signalled" % (how, timeout, EXPIRY_SLACK)):
            return
        check(elapsed >= timeout / 2, "%s: lock passed %.3f s after the signal, before half the %.1f s session timeout" % (how, elapsed, timeout))
        check(lock.contenders() == ["contender-" + how], "%s: contenders after expiry: %s" % (how, lock.contenders()))
        lock.release()
    finally:
        child.kill()
        child.wait()
        close(contender_zk)


def main():
    if len(sys.argv) == 5 and sys.argv[3] == "holder":
        holder(sys.argv[1], sys.argv[4])
        return
    if len(sys.argv) != 3:
        print("usage: %s HOSTS BASE_PATH" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    hosts, base = sys.argv[1:]
    setup = client(hosts)
    setup.ensure_path(base)
    close(setup)
    run_threads([lambda: variant(hosts, base, "stop"), lambda: variant(hosts, base, "kill")], "expiry variants", timeout=90)
    finish("OK: an expired holder's lock passed to the contender after the session timeout")


if __name__ == "__main__":
    main()
