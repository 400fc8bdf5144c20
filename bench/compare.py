#!/usr/bin/env python3
"""Compare rzk with Apache ZooKeeper 3.8.0 on this machine, in one run, with one client.

Started by bench/compare.sh (which builds the release binary). For every operation, both
servers are started fresh with the same zoo.cfg settings on free loopback ports, and
`rzk bench` is run against each in turn for every (sessions, in-flight) pair, alternating
which server goes first, so slow drift in the machine's load hits both alike. Server CPU and
RSS come from /proc over the measured window (`rzk bench --server-pid`). The disk's fsync
rate (dd with oflag=dsync in the same directory as the data) is the physical reference.

Writes results.json and report.md into --out and prints the report. Nothing here is
extrapolated: every figure in the report is a measurement of this run.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import time

ZOOKEEPER_JARS = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/servlet-api.jar",
]
LOG4J = """log4j.rootLogger=WARN, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File={log}
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{{ISO8601}} %-5p [%t] %c{{1}} - %m%n
"""
OPS = ["create", "set", "get", "exists", "mixed", "watch"]
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
MIXED_READ_PERCENT = 90
MILLION = 1_000_000


def log(message):
    print(f"[compare {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port(taken):
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def four_letter(port, word, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(word.encode())
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def srvr_field(reply, name):
    for line in reply.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def proc_rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class Member:
    """One server process (rzk or ZooKeeper) with its own directory, config and log."""

    # Extra JVM options for ZooKeeper (cpu_profile.py sets the ones perf needs).
    jvm_options = ()

    def __init__(self, kind, rzk_binary, base, member_id, ports, peers):
        self.kind, self.rzk_binary = kind, rzk_binary
        self.dir = os.path.join(base, f"{kind}-{member_id}")
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.port = ports["client"]
        self.log_path = os.path.join(self.dir, "server.log")
        lines = [
            "tickTime=2000", "initLimit=10", "syncLimit=5",
            f"dataDir={self.data_dir}", f"clientPort={self.port}",
            "4lw.commands.whitelist=*", "admin.enableServer=false", "maxClientCnxns=0",
        ]
        if peers:
            with open(os.path.join(self.data_dir, "myid"), "w") as myid:
                myid.write(f"{member_id}\n")
            for peer_id, peer in peers.items():
                lines.append(f"server.{peer_id}=127.0.0.1:{peer['quorum']}:{peer['election']}")
        self.config = os.path.join(self.dir, "zoo.cfg")
        with open(self.config, "w") as config:
            config.write("\n".join(lines) + "\n")
        self.ready_modes = ("leader", "follower") if peers else ("standalone",)
        self.process = None
        self.started_at = None

    def command(self):
        if self.kind == "rzk":
            return [self.rzk_binary, "server", self.config]
        log4j = os.path.join(self.dir, "log4j.properties")
        with open(log4j, "w") as handle:
            handle.write(LOG4J.format(log=self.log_path + ".log4j"))
        return ["java", *self.jvm_options, "-Xmx1000m", f"-Dlog4j.configuration=file:{log4j}",
                "-cp", ":".join(ZOOKEEPER_JARS),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.config]

    def start(self):
        output = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.command(), cwd=self.dir, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.kind} exited with {self.process.returncode}; see {self.log_path}")
        try:
            reply = four_letter(self.port, "srvr")
        except OSError:
            return None
        return reply if srvr_field(reply, "Mode") in self.ready_modes else None

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Cluster:
    """A standalone server or a 3-member ensemble of one kind."""

    def __init__(self, kind, rzk_binary, base, size, taken, member_class=Member):
        ports = {i: {"client": free_port(taken), "quorum": free_port(taken),
                     "election": free_port(taken)} for i in range(1, size + 1)}
        peers = ports if size > 1 else None
        self.kind = kind
        home = tempfile.mkdtemp(prefix=f"{kind}-", dir=base)
        self.members = [member_class(kind, rzk_binary, home, i, ports[i], peers) for i in ports]

    def start(self):
        for member in self.members:
            member.start()
        return self.wait_ready()

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = list(self.members)
        ready_after = {}
        while pending:
            for member in list(pending):
                if member.ready() is not None:
                    ready_after[member.port] = time.monotonic() - member.started_at
                    pending.remove(member)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} not ready within {READY_TIMEOUT_S} s; see {pending[0].log_path}")
            if pending:
                time.sleep(0.02)
        return max(ready_after.values())

    def stop(self):
        for member in self.members:
            member.stop()

    def servers(self, placement="all"):
        """The connect string: every member, or ("leader") only the one that leads now."""
        members = self.members
        if placement == "leader" and len(members) > 1:
            members = [m for m in members
                       if srvr_field(four_letter(m.port, "srvr"), "Mode") == "leader"][:1]
            if not members:
                raise RuntimeError(f"no {self.kind} member says Mode: leader")
        return ",".join(f"127.0.0.1:{m.port}" for m in members)

    def pids(self):
        return ",".join(str(m.process.pid) for m in self.members)

    def version(self):
        return srvr_field(four_letter(self.members[0].port, "srvr"), "Zookeeper version")


class FloorMember(Member):
    """`fsync_floor_server` (crates/rzk/examples): answers a create once its bytes are written and
    fdatasync'ed, and does nothing else. `rzk_binary` is that example's binary here."""

    def command(self):
        return [self.rzk_binary, f"127.0.0.1:{self.port}", self.data_dir]

    def ready(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"the floor server exited with {self.process.returncode}; see {self.log_path}")
        with open(self.log_path, errors="replace") as log:
            return "listening on" in log.read() or None


def fsync_probe(directory, count=500):
    """dd 4 KiB blocks with O_DSYNC: each write waits for the disk, as a WAL fsync does."""
    target = os.path.join(directory, "fsync-probe")
    result = subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=4k", f"count={count}", "oflag=dsync"],
        capture_output=True, text=True, check=True)
    os.remove(target)
    match = re.search(r"copied, ([0-9.]+) s", result.stderr)
    seconds = float(match.group(1))
    return {"writes": count, "seconds": seconds, "fsyncs_per_second": count / seconds,
            "us_per_fsync": 1e6 * seconds / count}


def fdatasync_probe(directory, count=500):
    """4 KiB overwrites of a preallocated file, each followed by fdatasync: what a server's
    preallocated write-ahead log does per group commit (dd's new file also pays for allocation)."""
    target = os.path.join(directory, "fdatasync-probe")
    block = b"x" * 4096
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, bytes(4096 * count))
        os.fsync(fd)
        # Each call timed on its own as well: the mean carries the disk's rare multi-millisecond
        # stalls, which a server's p50 does not, so a p50 is compared with the calls' p50.
        calls_us = []
        started = time.monotonic()
        for index in range(count):
            call_started = time.perf_counter()
            os.pwrite(fd, block, index * 4096)
            os.fdatasync(fd)
            calls_us.append(1e6 * (time.perf_counter() - call_started))
        seconds = time.monotonic() - started
    finally:
        os.close(fd)
        os.remove(target)
    return {"writes": count, "seconds": seconds, "fsyncs_per_second": count / seconds,
            "us_per_fsync": 1e6 * seconds / count, "p50_us": statistics.median(calls_us),
            "method": "prealloc+fdatasync"}


def fsync_probes(directory, rounds=3):
    """The disk is shared: one probe can land on someone else's burst, so take a few of each."""
    probes = []
    for _ in range(rounds):
        probes.append(dict(fsync_probe(directory), method="dd oflag=dsync"))
        probes.append(fdatasync_probe(directory))
    return probes


def loadavg():
    with open("/proc/loadavg") as handle:
        return [float(x) for x in handle.read().split()[:3]]


def machine_info(rzk_binary):
    with open("/proc/meminfo") as handle:
        mem_kib = int(re.search(r"MemTotal:\s+(\d+)", handle.read()).group(1))
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        match = re.search(r"model name\s*:\s*(.*)", handle.read())
        if match:
            cpu = match.group(1).strip()
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    rzk = subprocess.run([rzk_binary, "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kib / 1024 / 1024, 1), "cpu": cpu,
            "kernel": os.uname().release, "java": java[0] if java else "unknown", "rzk": rzk}


def run_bench(rzk_binary, cluster, op, sessions, inflight, duration, warmup, placement="all"):
    command = [rzk_binary, "bench", "--servers", cluster.servers(placement), "--op", op,
               "--clients", str(sessions), "--inflight", str(inflight),
               "--duration", str(duration), "--warmup", str(warmup),
               "--read-percent", str(MIXED_READ_PERCENT), "--server-pid", cluster.pids(),
               "--no-cleanup", "--json"]
    load_before = loadavg()[0]
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=duration + warmup + 300, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    report = json.loads(result.stdout)
    latency = report["latency_us"] or {}
    servers = report["servers"]
    # Mixed runs: reads' and writes' latencies apart (the writes' tail is the whole's p99).
    by_kind = {}
    for kind, part in (report.get("by_kind") or {}).items():
        part_latency = part.get("latency_us") or {}
        by_kind[kind] = {"ops": part.get("ops"), "p50_us": part_latency.get("p50"),
                         "p90_us": part_latency.get("p90"), "p99_us": part_latency.get("p99"),
                         "p999_us": part_latency.get("p999")}
    return {
        "server": cluster.kind, "op": op, "sessions": sessions, "inflight": inflight,
        "ops": report["ops"], "ops_per_second": report["ops_per_second"],
        "measured_seconds": report["measured_seconds"],
        "p50_us": latency.get("p50"), "p90_us": latency.get("p90"), "p99_us": latency.get("p99"),
        "p999_us": latency.get("p999"), "max_us": latency.get("max"),
        "errors": report["errors"], "errors_by_kind": report["errors_by_kind"],
        "by_kind": by_kind or None,
        "server_cpu_seconds": sum(s["cpu_seconds"] for s in servers),
        "server_rss_bytes": sum(s["rss_bytes"] for s in servers),
        "client_cpu_seconds": report["client_cpu_seconds"],
        "loadavg_1m_before": load_before,
    }


def stop_and_remove(clusters):
    """Stop every member of `clusters`, then delete their data directories."""
    for cluster in clusters:
        cluster.stop()
    for cluster in clusters:
        for member in cluster.members:
            shutil.rmtree(member.data_dir, ignore_errors=True)


def run_matrix(args, base, taken, size, results):
    combos = [(s, i) for s in args.sessions for i in args.inflight]
    for op_index, op in enumerate(args.ops):
        clusters = {kind: Cluster(kind, args.rzk, base, size, taken) for kind in ("zookeeper", "rzk")}
        try:
            for cluster in clusters.values():
                cluster.start()
            if args.server_warmup > 0:
                # A fresh JVM interprets before its JIT compiles the hot paths; without this the
                # first cell of every op would measure ZooKeeper's start-up, not its steady state.
                for cluster in clusters.values():
                    run_bench(args.rzk, cluster, op, 8, 32, args.server_warmup, 0,
                              args.ensemble_clients if size > 1 else "all")
            for combo_index, (sessions, inflight) in enumerate(combos):
                for repeat in range(args.repeat):
                    first = (op_index + combo_index + repeat) % 2 == 0
                    order = ["zookeeper", "rzk"] if first else ["rzk", "zookeeper"]
                    for kind in order:
                        placement = args.ensemble_clients if size > 1 else "all"
                        row = run_bench(args.rzk, clusters[kind], op, sessions, inflight,
                                        args.duration, args.warmup, placement)
                        row["members"] = size
                        row["client_placement"] = placement
                        row["repeat"] = repeat
                        results.append(row)
                        log(f"{size}x {kind:9} {op:6} s={sessions:<3} m={inflight:<3} "
                            f"{row['ops_per_second']:10.0f} ops/s p50 {fmt_ms(row['p50_us'])} "
                            f"p99 {fmt_ms(row['p99_us'])} ms errors {row['errors']}")
        finally:
            stop_and_remove(clusters.values())


def million(args, base, taken):
    """Populate 1,000,000 znodes of 100 B, then RSS, data size, and restart-to-serving time."""
    rows = []
    for kind in ("zookeeper", "rzk"):
        cluster = Cluster(kind, args.rzk, base, 1, taken)
        member = cluster.members[0]
        try:
            cluster.start()
            result = subprocess.run(
                [args.rzk, "bench", "--servers", cluster.servers(), "--populate", str(MILLION),
                 "--value-size", "100", "--clients", "4", "--inflight", "4", "--json"],
                capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                raise RuntimeError(f"populate on {kind} failed: {result.stderr.strip()}")
            populate = json.loads(result.stdout)
            nodes = int(srvr_field(four_letter(member.port, "srvr"), "Node count"))
            rss_loaded = proc_rss_bytes(member.process.pid)
            member.stop()
            data_bytes = dir_bytes(member.data_dir)
            member.start()
            ready = cluster.wait_ready()
            restarted_nodes = int(srvr_field(four_letter(member.port, "srvr"), "Node count"))
            # Settle for a moment so the figure is the loaded tree, not a transient peak.
            time.sleep(2)
            rows.append({
                "server": kind, "populate_seconds": populate["seconds"],
                "znodes_per_second": populate["znodes_per_second"],
                "populate_errors": populate["errors"], "node_count": nodes,
                "rss_bytes_loaded": rss_loaded, "data_dir_bytes": data_bytes,
                "restart_to_serving_seconds": ready, "node_count_after_restart": restarted_nodes,
                "rss_bytes_after_restart": proc_rss_bytes(member.process.pid),
            })
            log(f"million {kind}: {rows[-1]}")
        finally:
            cluster.stop()
            shutil.rmtree(member.data_dir, ignore_errors=True)
    return rows


def sync_write(args, base, taken):
    """One session's synchronous create against one fsync, in alternating rounds: a
    prealloc+fdatasync probe, create 1 x 1 on each server (which goes first alternates), another
    probe. Each round's ratio is its p50 over one fsync, the p50 of the probes' calls (the mean of
    the two probes' p50s), so a disk whose sync time drifts during the run is compared with itself
    at that moment, and a p50 with a p50; the ratio over the probes' mean is kept as well.

    Each round also runs getData 1 x 1 on rzk, between the creates and the second probe: the same
    client's loopback round trip with a read's work. One fsync plus that p50 is the round's
    floor, near the least a server could reach here (a create needs both the sync and the round
    trip), and the create's p50 minus the floor is what the write path costs beyond them.

    With --floor-server, each round also runs create 1 x 1 on that server, which answers a
    create once its bytes are fdatasync'ed and does nothing else: the floor measured instead of
    added up, with the sleeps a real create causes on both sides."""
    clusters = {kind: Cluster(kind, args.rzk, base, 1, taken) for kind in ("zookeeper", "rzk")}
    if args.floor_server:
        clusters["floor_server"] = Cluster("floor_server", args.floor_server, base, 1, taken,
                                           member_class=FloorMember)
    rows = []
    try:
        for cluster in clusters.values():
            cluster.start()
        if args.server_warmup > 0:
            for cluster in clusters.values():
                run_bench(args.rzk, cluster, "create", 1, 1, args.server_warmup, 0)
        for index in range(args.sync_write):
            before = fdatasync_probe(base)
            order = ["zookeeper", "rzk"] if index % 2 == 0 else ["rzk", "zookeeper"]
            cells = {}
            for kind in order:
                cells[kind] = run_bench(args.rzk, clusters[kind], "create", 1, 1,
                                        args.duration, args.warmup)
            if "floor_server" in clusters:
                cells["floor_server"] = run_bench(args.rzk, clusters["floor_server"], "create", 1, 1,
                                                  args.duration, args.warmup)
            read = run_bench(args.rzk, clusters["rzk"], "get", 1, 1, args.duration, args.warmup)
            after = fdatasync_probe(base)
            probe_us = (before["us_per_fsync"] + after["us_per_fsync"]) / 2
            probe_p50_us = (before["p50_us"] + after["p50_us"]) / 2
            row = {"round": index, "probe_before_us": before["us_per_fsync"],
                   "probe_after_us": after["us_per_fsync"], "probe_us": probe_us,
                   "probe_before_p50_us": before["p50_us"], "probe_after_p50_us": after["p50_us"],
                   "probe_p50_us": probe_p50_us,
                   "rzk_get_p50_us": read["p50_us"], "floor_us": probe_us + read["p50_us"],
                   "floor_p50_us": probe_p50_us + read["p50_us"]}
            row["floor_ratio"] = row["floor_us"] / probe_us
            row["floor_ratio_p50"] = row["floor_p50_us"] / probe_p50_us
            for kind, cell in cells.items():
                row[f"{kind}_p50_us"] = cell["p50_us"]
                row[f"{kind}_ratio"] = cell["p50_us"] / probe_us
                row[f"{kind}_ratio_p50"] = cell["p50_us"] / probe_p50_us
            row["rzk_beyond_floor_us"] = row["rzk_p50_us"] - row["floor_us"]
            row["rzk_beyond_floor_p50_us"] = row["rzk_p50_us"] - row["floor_p50_us"]
            if "floor_server" in cells:
                row["rzk_beyond_floor_server_us"] = row["rzk_p50_us"] - row["floor_server_p50_us"]
            rows.append(row)
            log(f"sync write round {index}: probe mean {probe_us:.0f} µs, p50 {probe_p50_us:.0f} µs; "
                f"rzk p50 {row['rzk_p50_us']} µs ({row['rzk_ratio_p50']:.2f}x the probe p50, "
                f"{row['rzk_ratio']:.2f}x its mean), ZooKeeper p50 {row['zookeeper_p50_us']} µs "
                f"({row['zookeeper_ratio_p50']:.2f}x, {row['zookeeper_ratio']:.2f}x), rzk get p50 "
                f"{read['p50_us']} µs (floor {row['floor_ratio_p50']:.2f}x the probe p50; rzk "
                f"{row['rzk_beyond_floor_p50_us']:.0f} µs beyond it)"
                + (f"; floor server p50 {row['floor_server_p50_us']} µs "
                   f"({row['floor_server_ratio_p50']:.2f}x; rzk {row['rzk_beyond_floor_server_us']:.0f} µs "
                   f"beyond it)" if "floor_server_p50_us" in row else ""))
    finally:
        stop_and_remove(clusters.values())
    return rows


def fmt_ms(us):
    return "-" if us is None else f"{us / 1000:.3f}"


def kind_p50_p99(row, kind):
    """`p50 / p99` in ms of a mixed cell's reads or writes ("-" where the run did not split them)."""
    part = (row.get("by_kind") or {}).get(kind) or {}
    return f"{fmt_ms(part.get('p50_us'))} / {fmt_ms(part.get('p99_us'))}"


def ratio(a, b):
    return "-" if not a or not b else f"{a / b:.2f}"


def median_range(values, spec=".2f"):
    values = sorted(values)
    return f"median {statistics.median(values):{spec}}, from {values[0]:{spec}} to {values[-1]:{spec}}"


def sync_write_markdown(sync_rows):
    """The --sync-write section. Rounds recorded before the probes were timed call by call (no
    `probe_p50_us`) render as they did then: ratios over the probes' mean only."""
    out = ["", "### One session's synchronous create against one fsync (standalone)", ""]
    if all("probe_p50_us" in row for row in sync_rows):
        out.append("Each round: a prealloc+fdatasync probe (500 x 4 KiB, each call timed), create 1 x 1 "
                   "on both servers, getData 1 x 1 on rzk, another probe. \"One fsync\" is the p50 of "
                   "the probes' calls (the mean of the two probes' p50s), the statistic the servers' "
                   "p50 is; ratios over the probes' mean (their calls' total time / 500, which carries "
                   "the disk's rare stalls) are given too, as earlier reports gave them. The floor is "
                   "one fsync plus the getData p50 (the same client's loopback round trip): near the "
                   "least a server could reach here.")
        measured = all("floor_server_p50_us" in row for row in sync_rows)
        if measured:
            out.append("")
            out.append("The floor server (`fsync_floor_server`, crates/rzk/examples) answers a create once "
                       "its bytes are written to a preallocated file and fdatasync'ed, and does nothing "
                       "else: the floor measured with the same client, with the sleeps a create causes.")
        out.append("")
        out.append("| round | probe p50 µs | probe mean µs | rzk p50 ms | rzk / fsync p50 | rzk / fsync mean "
                   "| ZK p50 ms | ZK / fsync p50 | ZK / fsync mean | rzk get p50 ms | floor / fsync p50 "
                   "| rzk beyond the floor µs |"
                   + (" floor server p50 ms | floor server / fsync p50 | rzk beyond the floor server µs |"
                      if measured else ""))
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
                   + ("---:|---:|---:|" if measured else ""))
        for row in sync_rows:
            out.append(f"| {row['round'] + 1} | {row['probe_p50_us']:.0f} | {row['probe_us']:.0f} "
                       f"| {fmt_ms(row['rzk_p50_us'])} | {row['rzk_ratio_p50']:.2f} | {row['rzk_ratio']:.2f} "
                       f"| {fmt_ms(row['zookeeper_p50_us'])} | {row['zookeeper_ratio_p50']:.2f} "
                       f"| {row['zookeeper_ratio']:.2f} | {fmt_ms(row['rzk_get_p50_us'])} "
                       f"| {row['floor_ratio_p50']:.2f} | {row['rzk_beyond_floor_p50_us']:.0f} |"
                       + (f" {fmt_ms(row['floor_server_p50_us'])} | {row['floor_server_ratio_p50']:.2f} "
                          f"| {row['rzk_beyond_floor_server_us']:.0f} |" if measured else ""))
        out.append("")
        out.append(f"Over {len(sync_rows)} rounds, against the probes' p50: rzk / fsync "
                   f"{median_range(r['rzk_ratio_p50'] for r in sync_rows)}; ZooKeeper / fsync "
                   f"{median_range(r['zookeeper_ratio_p50'] for r in sync_rows)}; floor / fsync "
                   f"{median_range(r['floor_ratio_p50'] for r in sync_rows)}; rzk beyond the floor (µs) "
                   f"{median_range((r['rzk_beyond_floor_p50_us'] for r in sync_rows), '.0f')}.")
        if measured:
            out.append(f"The floor server / fsync {median_range(r['floor_server_ratio_p50'] for r in sync_rows)}; "
                       f"rzk beyond the floor server (µs) "
                       f"{median_range((r['rzk_beyond_floor_server_us'] for r in sync_rows), '.0f')}.")
        out.append(f"Against the probes' mean: rzk / fsync {median_range(r['rzk_ratio'] for r in sync_rows)}; "
                   f"ZooKeeper / fsync {median_range(r['zookeeper_ratio'] for r in sync_rows)}.")
        return out
    out.append("Each round: a prealloc+fdatasync probe (500 x 4 KiB), create 1 x 1 on both servers, "
               "getData 1 x 1 on rzk, another probe; a ratio is the p50 over the mean of the round's "
               "two probes. The floor is the probe plus the getData p50 (the same client's loopback "
               "round trip): near the least a server could reach here.")
    out.append("")
    out.append("| round | probe before µs | probe after µs | rzk p50 ms | rzk / fsync | ZK p50 ms | ZK / fsync "
               "| rzk get p50 ms | floor / fsync | rzk beyond the floor µs |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in sync_rows:
        floor = (f"| {fmt_ms(row['rzk_get_p50_us'])} | {row['floor_ratio']:.2f} "
                 f"| {row['rzk_beyond_floor_us']:.0f} |" if "floor_us" in row else "| - | - | - |")
        out.append(f"| {row['round'] + 1} | {row['probe_before_us']:.0f} | {row['probe_after_us']:.0f} "
                   f"| {fmt_ms(row['rzk_p50_us'])} | {row['rzk_ratio']:.2f} "
                   f"| {fmt_ms(row['zookeeper_p50_us'])} | {row['zookeeper_ratio']:.2f} {floor}")
    out.append("")
    out.append(f"Over {len(sync_rows)} rounds: rzk / fsync {median_range(r['rzk_ratio'] for r in sync_rows)}; "
               f"ZooKeeper / fsync {median_range(r['zookeeper_ratio'] for r in sync_rows)}.")
    floors = [r for r in sync_rows if "floor_us" in r]
    if floors:
        out.append(f"Floor / fsync {median_range(r['floor_ratio'] for r in floors)}; rzk beyond the "
                   f"floor (µs) {median_range((r['rzk_beyond_floor_us'] for r in floors), '.0f')}.")
    return out


def report_markdown(meta, results, million_rows, sync_rows=()):
    out = []
    if results:
        out.append(f"Run: {meta['started']} to {meta['ended']}, {meta['mode']} mode, "
                   f"{meta['duration']} s measured after {meta['warmup']} s warmup per cell; each fresh "
                   f"server first had {meta.get('server_warmup', 0)} s of unrecorded load.")
    else:
        out.append(f"Run: {meta['started']} to {meta['ended']}.")
    m = meta["machine"]
    out.append(f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}, "
               f"{m['java']}; {m['rzk']}; ZooKeeper {meta.get('zookeeper_version')}.")
    for label, probes in (("start", meta["fsync_start"]), ("end", meta["fsync_end"])):
        for method in ("dd oflag=dsync", "prealloc+fdatasync"):
            rates = ", ".join(f"{p['fsyncs_per_second']:.0f}/s ({p['us_per_fsync']:.0f} µs"
                              + (f", p50 {p['p50_us']:.0f} µs)" if "p50_us" in p else ")")
                              for p in probes if p.get("method", "dd oflag=dsync") == method)
            if not rates:
                continue  # Runs recorded before this probe existed.
            out.append(f"fsync probe at {label}, {method} (500 x 4 KiB, same filesystem as the data "
                       f"directories): {rates}.")
    out.append(f"Load average (1 min) at start {meta['load_start'][0]}, at end {meta['load_end'][0]}.")
    # With --repeat, a cell's table row is its median round by ops/s (each server's own median);
    # every round's ratio is listed after the table.
    rounds = {}
    for r in results:
        rounds.setdefault((r["members"], r["op"], r["sessions"], r["inflight"], r["server"]), []).append(r)
    by_key = {key: sorted(rows, key=lambda r: r["ops_per_second"])[(len(rows) - 1) // 2]
              for key, rows in rounds.items()}
    for members in sorted({r["members"] for r in results}):
        for op in [op for op in OPS if any(r["op"] == op and r["members"] == members for r in results)]:
            placement = next(r.get("client_placement", "all") for r in results if r["members"] == members)
            label = "standalone" if members == 1 else f"{members}-member ensemble, sessions on {placement}"
            out.append("")
            out.append(f"### {op} ({label}{', ' + str(MIXED_READ_PERCENT) + '% reads' if op == 'mixed' else ''})")
            out.append("")
            out.append("| sessions | in-flight | ZK ops/s | rzk ops/s | rzk/ZK | ZK p50 ms | rzk p50 ms "
                       "| ZK p99 ms | rzk p99 ms | ZK p99.9 ms | rzk p99.9 ms | ZK CPU µs/op | rzk CPU µs/op "
                       "| ZK RSS MiB | rzk RSS MiB | errors ZK/rzk |")
            out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            combos = sorted({(r["sessions"], r["inflight"]) for r in results
                             if r["op"] == op and r["members"] == members})
            for sessions, inflight in combos:
                zk = by_key.get((members, op, sessions, inflight, "zookeeper"))
                rz = by_key.get((members, op, sessions, inflight, "rzk"))
                if not zk or not rz:
                    continue
                cpu = lambda r: "-" if not r["ops"] else f"{1e6 * r['server_cpu_seconds'] / r['ops']:.0f}"
                out.append(
                    f"| {sessions} | {inflight} | {zk['ops_per_second']:.0f} | {rz['ops_per_second']:.0f} "
                    f"| {ratio(rz['ops_per_second'], zk['ops_per_second'])} "
                    f"| {fmt_ms(zk['p50_us'])} | {fmt_ms(rz['p50_us'])} "
                    f"| {fmt_ms(zk['p99_us'])} | {fmt_ms(rz['p99_us'])} "
                    f"| {fmt_ms(zk['p999_us'])} | {fmt_ms(rz['p999_us'])} "
                    f"| {cpu(zk)} | {cpu(rz)} "
                    f"| {zk['server_rss_bytes'] / 2**20:.0f} | {rz['server_rss_bytes'] / 2**20:.0f} "
                    f"| {zk['errors']}/{rz['errors']} |")
            if op == "mixed":
                out.append("")
                out.append("Mixed, reads and writes apart (the same median rounds): p50 / p99 ms, ZK then rzk.")
                out.append("")
                out.append("| sessions | in-flight | ZK reads | rzk reads | ZK writes | rzk writes |")
                out.append("|---:|---:|---|---|---|---|")
                for sessions, inflight in combos:
                    zk = by_key.get((members, op, sessions, inflight, "zookeeper"))
                    rz = by_key.get((members, op, sessions, inflight, "rzk"))
                    if not zk or not rz:
                        continue
                    out.append(f"| {sessions} | {inflight} | {kind_p50_p99(zk, 'read')} "
                               f"| {kind_p50_p99(rz, 'read')} | {kind_p50_p99(zk, 'write')} "
                               f"| {kind_p50_p99(rz, 'write')} |")
            repeated = [(sessions, inflight) for sessions, inflight in combos
                        if len(rounds.get((members, op, sessions, inflight, "rzk"), [])) > 1]
            if repeated:
                out.append("")
            for sessions, inflight in repeated:
                pairs = zip(rounds[(members, op, sessions, inflight, "rzk")],
                            rounds.get((members, op, sessions, inflight, "zookeeper"), []))
                ratios = [ratio(rz["ops_per_second"], zk["ops_per_second"]) for rz, zk in pairs]
                out.append(f"{sessions} x {inflight}: the table shows each server's median of "
                           f"{len(ratios)} alternating rounds; rzk/ZK ops/s in each round: "
                           f"{', '.join(ratios)}.")
    if sync_rows:
        out.extend(sync_write_markdown(sync_rows))
    if million_rows:
        out.append("")
        out.append("### 1,000,000 znodes of 100 B (standalone)")
        out.append("")
        out.append("| server | populate s | znodes/s | RSS loaded MiB | data dir MiB | restart-to-serving s "
                   "| RSS after restart MiB | nodes after restart |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in million_rows:
            out.append(f"| {row['server']} | {row['populate_seconds']:.1f} | {row['znodes_per_second']:.0f} "
                       f"| {row['rss_bytes_loaded'] / 2**20:.0f} | {row['data_dir_bytes'] / 2**20:.0f} "
                       f"| {row['restart_to_serving_seconds']:.2f} | {row['rss_bytes_after_restart'] / 2**20:.0f} "
                       f"| {row['node_count_after_restart']} |")
    return "\n".join(out) + "\n"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rzk", required=True, help="the release rzk binary")
    parser.add_argument("--quick", action="store_true", help="short cells (1 s warmup, 3 s measured)")
    parser.add_argument("--ensemble", action="store_true",
                        help="also run the matrix on 3-member ensembles of each server")
    parser.add_argument("--ensemble-only", action="store_true", help="run only the 3-member matrix")
    parser.add_argument("--ensemble-clients", choices=["leader", "all"], default="all",
                        help="ensembles: spread sessions over all members (session i on member i mod 3, "
                             "the default) or connect every session to the leader (for builds whose "
                             "followers refuse sessions, as rzk's did at 19a9032)")
    parser.add_argument("--million", action="store_true",
                        help="also populate 1,000,000 znodes and measure RSS, size and restart (slow)")
    parser.add_argument("--million-only", action="store_true", help="run only the 1,000,000-znode part")
    parser.add_argument("--sync-write", type=int, default=0, metavar="ROUNDS",
                        help="also measure one session's synchronous create against one fsync: "
                             "ROUNDS alternating rounds of a probe, create 1 x 1 on both servers, "
                             "getData 1 x 1 on rzk (the floor: the probe calls' p50 + its p50), a probe")
    parser.add_argument("--sync-write-only", action="store_true",
                        help="run only the --sync-write rounds (6 unless --sync-write says)")
    parser.add_argument("--floor-server", metavar="BINARY",
                        help="the fsync_floor_server example (compare.sh builds it): --sync-write "
                             "rounds also run create 1 x 1 on it, a server that answers a create "
                             "once it is fdatasync'ed and does nothing else")
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--sessions", default="1,8,64")
    parser.add_argument("--inflight", default="1,32")
    parser.add_argument("--duration", type=float)
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--server-warmup", type=float,
                        help="seconds of unrecorded load (8 sessions x 32) on each fresh server before "
                             "an op's cells (default 3 quick, 5 full; 0 to skip)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each cell this many times, alternating which server goes first; "
                             "the tables show each server's median round and list every round's ratio")
    parser.add_argument("--out", help="directory for results.json and report.md")
    parser.add_argument("--workdir", help="where the servers' data directories go (default: a temporary directory)")
    args = parser.parse_args()
    args.ops = [op for op in args.ops.split(",") if op]
    unknown = [op for op in args.ops if op not in OPS]
    if unknown:
        parser.error(f"unknown ops {unknown}; choose from {OPS}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.sessions = [int(x) for x in args.sessions.split(",")]
    args.inflight = [int(x) for x in args.inflight.split(",")]
    args.duration = args.duration or (3.0 if args.quick else 8.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    if args.server_warmup is None:
        args.server_warmup = 3.0 if args.quick else 5.0
    if args.sync_write < 0:
        parser.error("--sync-write must be at least 0")
    if args.sync_write_only and args.sync_write == 0:
        args.sync_write = 6
    return args


def main():
    args = parse_args()
    for jar in ZOOKEEPER_JARS:
        if not os.path.isfile(jar):
            sys.exit(f"missing {jar}: apt-get install -y zookeeper zookeeper-bin")
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    base = tempfile.mkdtemp(prefix="rzk-compare-", dir=args.workdir)
    out = args.out or base
    os.makedirs(out, exist_ok=True)
    taken = set()
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "mode": "quick" if args.quick else "full",
            "duration": args.duration, "warmup": args.warmup, "server_warmup": args.server_warmup,
            "machine": machine_info(args.rzk),
            "load_start": loadavg(), "fsync_start": fsync_probes(base), "workdir": base}
    log(f"machine {meta['machine']}; fsync/s {[round(p['fsyncs_per_second']) for p in meta['fsync_start']]}; "
        f"load {meta['load_start']}; data under {base}")
    probe = Cluster("zookeeper", args.rzk, base, 1, taken)
    probe.start()
    meta["zookeeper_version"] = probe.version()
    probe.stop()
    results, million_rows, sync_rows = [], [], []
    try:
        if not args.million_only and not args.sync_write_only:
            if not args.ensemble_only:
                run_matrix(args, base, taken, 1, results)
            if args.ensemble or args.ensemble_only:
                run_matrix(args, base, taken, 3, results)
        if args.sync_write and not args.million_only:
            sync_rows = sync_write(args, base, taken)
        if (args.million or args.million_only) and not args.sync_write_only:
            million_rows = million(args, base, taken)
    finally:
        meta["ended"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        meta["load_end"] = loadavg()
        meta["fsync_end"] = fsync_probes(base)
        with open(os.path.join(out, "results.json"), "w") as handle:
            json.dump({"meta": meta, "results": results, "million": million_rows,
                       "sync_write": sync_rows}, handle, indent=1)
        report = report_markdown(meta, results, million_rows, sync_rows)
        with open(os.path.join(out, "report.md"), "w") as handle:
            handle.write(report)
        print(report)
        log(f"results in {out}")
        if not args.workdir and out != base:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
