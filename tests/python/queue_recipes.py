"""kazoo Queue and LockingQueue: every item consumed exactly once, FIFO for a single producer.

1. Queue, one producer then one consumer: the consumer gets exactly the ITEMS items in the order they were put.
2. Queue, one producer then CONSUMERS consumers (separate clients) racing on get(): each item is taken by
   exactly one consumer, none is lost or duplicated, and each consumer sees its items in put order.
3. LockingQueue, one producer putting WHILE CONSUMERS consumers get()/consume() concurrently; one consumer
   first release()s an item it took (it must be consumed later by someone). Every item is consumed exactly
   once and each consumer's items come in put order.
"""

import threading

from recipe_common import STEP_TIMEOUT, check, client, close, die, fail, finish, log, parse_args, run_threads

ITEMS = 30
CONSUMERS = 3


def items():
    return [("item-%03d" % n).encode() for n in range(ITEMS)]


def single_consumer_fifo(hosts, base):
    producer, consumer = client(hosts), client(hosts)
    producer_queue = producer.Queue(base + "/fifo")
    for item in items():
        producer_queue.put(item)
    consumer_queue = consumer.Queue(base + "/fifo")
    got = []
    while len(got) < ITEMS:
        item = consumer_queue.get()
        if item is None:
            die("Queue FIFO: queue empty after %d of %d items" % (len(got), ITEMS))
        got.append(item)
    check(got == items(), "Queue FIFO: got %s" % [g.decode() for g in got])
    check(consumer_queue.get() is None, "Queue FIFO: an extra item after all were consumed")
    close(producer)
    close(consumer)
    log("Queue: single consumer got %d items in put order" % ITEMS)


def check_exactly_once(name, per_consumer, unordered=()):
    everything = [item for got in per_consumer for item in got]
    check(
        sorted(everything) == items(),
        "%s: consumed %d items (%d distinct), expected each of %d exactly once"
        % (name, len(everything), len(set(everything)), ITEMS),
    )
    for index, got in enumerate(per_consumer):
        # A released item goes back to the head of the queue, so it may legitimately come late.
        got = [item for item in got if item not in unordered]
        check(got == sorted(got), "%s: consumer %d got its items out of order: %s" % (name, index, [g.decode() for g in got]))


def racing_consumers(hosts, base):
    producer = client(hosts)
    queue = producer.Queue(base + "/race")
    for item in items():
        queue.put(item)
    per_consumer = [[] for _ in range(CONSUMERS)]
    start = threading.Barrier(CONSUMERS, timeout=STEP_TIMEOUT)

    def consumer(index):
        zk = client(hosts)
        own = zk.Queue(base + "/race")
        try:
            start.wait()  # all connected before anyone takes, so they really race
            while True:
                item = own.get()
                if item is None:  # empty: every item has been taken by someone
                    return
                per_consumer[index].append(item)
        finally:
            close(zk)

    run_threads([lambda i=i: consumer(i) for i in range(CONSUMERS)], "Queue consumers")
    check_exactly_once("Queue race", per_consumer)
    check(len(queue) == 0, "Queue race: %d items left" % len(queue))
    close(producer)
    log("Queue: %d racing consumers took %s items" % (CONSUMERS, [len(g) for g in per_consumer]))


def locking_queue(hosts, base):
    path = base + "/locking"
    per_consumer = [[] for _ in range(CONSUMERS)]
    consumed = threading.Semaphore(0)
    done = threading.Event()
    released_item = []

    def producer():
        zk = client(hosts)
        queue = zk.LockingQueue(path)
        try:
            for item in items():
                queue.put(item)
        finally:
            close(zk)

    def consumer(index):
        zk = client(hosts)
        queue = zk.LockingQueue(path)
        try:
            if index == 0:
                item = queue.get(timeout=STEP_TIMEOUT)
                if item is None:
                    fail("LockingQueue: consumer 0 got nothing to release")
                    return
                check(queue.release(), "LockingQueue: release() of a held item returned False")
                released_item.append(item)
            while not done.is_set():
                item = queue.get(timeout=0.5)  # bounded; re-checks `done`
                if item is None:
                    continue
                if not queue.consume():
                    fail("LockingQueue: consumer %d could not consume %s" % (index, item.decode()))
                    continue
                per_consumer[index].append(item)
                consumed.release()
        finally:
            close(zk)

    def finisher():
        for n in range(ITEMS):
            if not consumed.acquire(timeout=STEP_TIMEOUT):
                fail("LockingQueue: only %d of %d items consumed" % (n, ITEMS))
                break
        done.set()

    run_threads([producer, finisher] + [lambda i=i: consumer(i) for i in range(CONSUMERS)], "LockingQueue", timeout=90)
    check_exactly_once("LockingQueue", per_consumer, unordered=released_item)
    check(released_item != [], "LockingQueue: the release step did not run")
    observer = client(hosts)
    check(len(observer.LockingQueue(path)) == 0, "LockingQueue: items left")
    close(observer)
    log("LockingQueue: %d consumers consumed %s items; %s was released and consumed later" % (CONSUMERS, [len(g) for g in per_consumer], [r.decode() for r in released_item]))


def main():
    hosts, base = parse_args()
    setup = client(hosts)
    setup.ensure_path(base)
    close(setup)
    single_consumer_fifo(hosts, base)
    racing_consumers(hosts, base)
    locking_queue(hosts, base)
    finish("OK: Queue FIFO, exactly-once with racing consumers, LockingQueue exactly-once")


if __name__ == "__main__":
    main()
