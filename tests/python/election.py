"""kazoo Election: exactly one leader at a time, and leadership passes when the leader's client stops.

CLIENTS clients (one KazooClient each) run Election.run in their own threads. The leader function records
that it leads (a second concurrent leader is a violation) and blocks until its client is stopped. The main
thread waits for a leader, checks with an observer client that the election's first contender is that leader
and that all live clients contend, then stops the leader's client (its session closes, its node goes) and
expects another, not-yet-stopped client to take over. Repeats until every client has led exactly once.
"""

import threading

from recipe_common import (
    STEP_TIMEOUT,
    check,
    bounded_join,
    client,
    close,
    die,
    fail,
    finish,
    log,
    parse_args,
    wait_children,
)

CLIENTS = 3


def main():
    hosts, base = parse_args()
    election_path = base + "/election"
    observer = client(hosts)
    observer.ensure_path(base)

    state = threading.Condition()
    current = {"leader": None}
    terms = []  # leaders in order of taking office
    stopped = set()
    released = {i: threading.Event() for i in range(CLIENTS)}
    clients = [client(hosts) for _ in range(CLIENTS)]

    def lead(index):
        with state:
            if current["leader"] is not None:
                fail("client %d became leader while client %s still leads" % (index, current["leader"]))
            if index in stopped:
                fail("client %d became leader after its client was stopped" % index)
            current["leader"] = index
            terms.append(index)
            state.notify_all()
        # Leads until the main thread stops this client.
        released[index].wait(STEP_TIMEOUT * 3)

    def contender(index):
        election = clients[index].Election(election_path, identifier="client-%d" % index)
        try:
            election.run(lead, index)
        except Exception as error:  # noqa: BLE001 - releasing on a stopped client fails, as expected
            if index not in stopped:
                fail("client %d: election.run raised %r" % (index, error))

    threads = [threading.Thread(target=contender, args=(i,), daemon=True, name="contender-%d" % i) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()

    for term in range(CLIENTS):
        with state:
            if not state.wait_for(lambda: current["leader"] is not None, STEP_TIMEOUT):
                die("term %d: no leader within %.0f s (stopped so far: %s)" % (term, STEP_TIMEOUT, sorted(stopped)))
            leader = current["leader"]
        log("term %d: client %d leads" % (term, leader))
        live = CLIENTS - len(stopped)
        # The other live clients may still be on their way in: wait until all of them have a node.
        wait_children(observer, election_path, lambda nodes: len(nodes) >= live, "term %d contenders" % term)
        contenders = observer.Election(election_path).contenders()
        check(
            contenders[:1] == ["client-%d" % leader],
            "term %d: first contender is %s, leader is client-%d" % (term, contenders[:1], leader),
        )
        check(
            sorted(contenders) == sorted("client-%d" % i for i in range(CLIENTS) if i not in stopped),
            "term %d: contenders %s, expected the %d live clients" % (term, contenders, live),
        )
        with state:
            current["leader"] = None
            stopped.add(leader)
        close(clients[leader])
        released[leader].set()

    bounded_join(threads, "contender threads")
    check(sorted(terms) == list(range(CLIENTS)), "leaders in order %s, expected each client once" % terms)
    check(observer.get_children(election_path) == [], "election nodes left: %s" % observer.get_children(election_path))
    close(observer)
    finish("OK: %d terms, one leader at a time, leadership passed on stop: %s" % (len(terms), terms))


if __name__ == "__main__":
    main()
