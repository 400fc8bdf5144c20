"""kazoo Election across the members of an ensemble, with one member killed (SIGKILL) mid-way.

CONTENDERS clients, homed on the members in turn (see ensemble_common), run Election.run in their own threads;
an observer homed on a survivor watches. The leader function records that it leads (a second concurrent
leader is a violation) and blocks until the main thread stops its client. Term 0: one leader, the first
contender, all clients contending. Then the test kills the victim member; checks: the clients homed on it
were suspended and reconnected to a survivor, no session was lost or changed, the leader is still the same
client (its session and election node were kept, nobody else took over) and every client still contends,
every client's ephemeral `alive` node is still there. Then leadership is handed over by stopping the
leader's client, term after term, until each client has led exactly once.
"""

import threading

from ensemble_common import Tracked, parse_args, signal_ready, wait_killed
from recipe_common import STEP_TIMEOUT, bounded_join, check, die, fail, finish, log, wait_children

CONTENDERS = 3


def main():
    members, base, victim, sync_dir = parse_args()
    election_path = base + "/election"
    observer = Tracked("observer", members, (victim + 1) % len(members), victim)
    observer.zk.retry(observer.zk.ensure_path, election_path)

    state = threading.Condition()
    current = {"leader": None}
    terms = []
    stopped = set()
    released = {i: threading.Event() for i in range(CONTENDERS)}
    clients = [Tracked("client-%d" % i, members, i % len(members), victim) for i in range(CONTENDERS)]
    for tracked in clients:
        tracked.create_alive(base)

    def lead(index):
        with state:
            if current["leader"] is not None:
                fail("client %d became leader while client %s still leads" % (index, current["leader"]))
            if index in stopped:
                fail("client %d became leader after its client was stopped" % index)
            current["leader"] = index
            terms.append(index)
            state.notify_all()
        released[index].wait(STEP_TIMEOUT * 6)

    def contender(index):
        election = clients[index].zk.Election(election_path, identifier="client-%d" % index)
        try:
            election.run(lead, index)
        except Exception as error:  # noqa: BLE001 - releasing on a stopped client fails, as expected
            if index not in stopped:
                fail("client %d: election.run raised %r" % (index, error))

    threads = [threading.Thread(target=contender, args=(i,), daemon=True, name="contender-%d" % i) for i in range(CONTENDERS)]
    for thread in threads:
        thread.start()

    def check_term(term):
        with state:
            if not state.wait_for(lambda: current["leader"] is not None, STEP_TIMEOUT):
                die("term %d: no leader within %.0f s (stopped so far: %s)" % (term, STEP_TIMEOUT, sorted(stopped)))
            leader = current["leader"]
        live = CONTENDERS - len(stopped)
        observer.zk.retry(observer.zk.sync, election_path)
        wait_children(observer.zk, election_path, lambda nodes: len(nodes) >= live, "term %d contenders" % term)
        contenders = observer.zk.retry(observer.zk.Election(election_path).contenders)
        check(
            contenders[:1] == ["client-%d" % leader],
            "term %d: first contender is %s, leader is client-%d" % (term, contenders[:1], leader),
        )
        check(
            sorted(contenders) == sorted("client-%d" % i for i in range(CONTENDERS) if i not in stopped),
            "term %d: contenders %s, expected the %d live clients" % (term, contenders, live),
        )
        return leader

    leader = check_term(0)
    log("term 0: client %d leads (homed on member %d)" % (leader, clients[leader].home))
    marks = {tracked.name: tracked.mark() for tracked in clients + [observer]}
    signal_ready(sync_dir, "ensemble_election")
    wait_killed(sync_dir)
    for tracked in clients + [observer]:
        tracked.wait_recovered(marks[tracked.name])
    for tracked in clients:
        tracked.check_alive(base)
    with state:
        check(current["leader"] == leader, "after the kill the leader is %s, was client %d" % (current["leader"], leader))
        check(terms == [leader], "leaders so far %s, expected only client %d" % (terms, leader))
    check(check_term(0) == leader, "the leader changed across the kill")

    for term in range(CONTENDERS):
        if term > 0:
            leader = check_term(term)
            log("term %d: client %d leads" % (term, leader))
        with state:
            current["leader"] = None
            stopped.add(leader)
        clients[leader].close()
        released[leader].set()

    bounded_join(threads, "contender threads")
    check(sorted(terms) == list(range(CONTENDERS)), "leaders in order %s, expected each client once" % terms)
    observer.zk.retry(observer.zk.sync, election_path)
    left = observer.zk.retry(observer.zk.get_children, election_path)
    check(left == [], "election nodes left: %s" % left)
    observer.close()
    finish(
        "OK: member %d killed during term 0 (client %d leading, kept); %d terms, one leader at a time: %s"
        % (victim, terms[0], len(terms), terms)
    )


if __name__ == "__main__":
    main()
