"""kazoo Counter: concurrent increments from separate clients add up exactly.

CLIENTS clients (one KazooClient and thread each) add 1 to the same Counter ROUNDS times.
Counter is a read + setData(version) compare-and-set loop, so every successful change must see a distinct
pre-value: the post-values of all increments must be exactly 1..CLIENTS*ROUNDS, and the final value and
dataVersion must both be CLIENTS*ROUNDS.
"""

import threading

from recipe_common import check, client, close, finish, log, parse_args, run_threads

CLIENTS = 4
ROUNDS = 25


def main():
    hosts, base = parse_args()
    path = base + "/counter"
    observer = client(hosts)
    observer.ensure_path(base)
    post_values = []
    post_lock = threading.Lock()

    def worker(index):
        zk = client(hosts)
        counter = zk.Counter(path)
        try:
            for _ in range(ROUNDS):
                counter += 1
                with post_lock:
                    post_values.append(counter.post_value)
        finally:
            close(zk)

    run_threads([lambda i=i: worker(i) for i in range(CLIENTS)], "counter workers", timeout=90)
    expected = CLIENTS * ROUNDS
    final = observer.Counter(path).value
    _, stat = observer.get(path)
    log("counter=%d dataVersion=%d" % (final, stat.version))
    check(final == expected, "counter is %d, expected %d" % (final, expected))
    check(stat.version == expected, "dataVersion is %d, expected %d" % (stat.version, expected))
    check(
        sorted(post_values) == list(range(1, expected + 1)),
        "post-values are not exactly 1..%d: duplicates %s"
        % (expected, sorted({v for v in post_values if post_values.count(v) > 1})),
    )
    close(observer)
    finish("OK: %d concurrent increments, exact total" % expected)


if __name__ == "__main__":
    main()
