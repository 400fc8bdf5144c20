#!/usr/bin/env python3
"""Profile one benchmark cell on rzk and on Apache ZooKeeper 3.8.0: where each server's CPU goes.

Started by bench/profile.sh (which builds the release binary and installs perf, inferno and
ZooKeeper when missing). For each server, a fresh standalone server (or 3-member ensemble) is
started with compare.py's zoo.cfg, given `--server-warmup` seconds of unrecorded load, and then
`rzk bench` runs the cell while `perf record` samples every server process over the measured
window. The server's CPU time per operation comes from /proc over that window (`rzk bench
--server-pid`), as in compare.py; perf's samples only split it into parts:

- kernel time by what the server asked of the kernel (the disk: log writes and fsync; the
  network: socket reads and writes and the loopback path; epoll; futex, the thread hand-offs;
  the scheduler's context switches; the rest of the kernel);
- user time by where it runs (rzk: the crate of the sampled function; ZooKeeper: the JVM
  thread, since its Java frames are named through the JVM's perf map).

Writes, into --out: `<server>.folded` (inferno's collapsed stacks), `<server>.svg` (a flame
graph), `profile.json` (every figure) and `profile.md` (the table, also printed). Nothing is
extrapolated: every figure is this run's.
"""

import argparse
import collections
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (compare.py: the servers, their zoo.cfg and the bench client)

PERF_TIMEOUT_EXTRA_S = 120

# Kernel work, named by the first rule with a frame anywhere in a sample's stack (the rules are
# tried in this order). The disk comes first: a sync sleeps in the scheduler, and file writes
# go through the filesystem's frames, so a socket write never counts as one.
KERNEL_RULES = [
    ("disk: log writes and fsync",
     ("sys_fdatasync", "sys_fsync", "vfs_fsync", "ext4_", "jbd2", "blk_", "virtblk",
      "sys_fallocate", "iomap_", "filemap_", "generic_perform_write")),
    # Before the network: waiting in epoll polls the sockets (tcp_poll).
    ("epoll", ("ep_poll", "do_epoll", "sys_epoll")),
    ("network: sockets and loopback",
     ("tcp_", "sock_", "sys_sendto", "sys_recvfrom", "sys_sendmsg", "sys_recvmsg", "inet_",
      "ip_rcv", "ip_finish", "ip_queue_xmit", "net_rx", "__napi", "loopback", "dev_queue_xmit",
      "skb_", "sys_readv", "sys_writev", "netif_")),
    ("futex: thread hand-offs", ("futex",)),
    ("scheduler: context switches", ("schedule", "finish_task_switch", "try_to_wake_up",
                                     "enqueue_task", "dequeue_task", "pick_next")),
]
# rzk's user time, named by the crate of the sampled (leaf) function.
RZK_USER_RULES = [
    ("openraft", ("openraft",)),
    ("tokio runtime", ("tokio::",)),
    ("state machine: tree, sessions, watches", ("rzk_state_machine", "imbl", "archery")),
    ("log and snapshots", ("rzk_storage", "crc32")),
    ("replication glue", ("rzk_replication",)),
    ("server: connections, sessions", ("rzk_server",)),
    ("protocol: jute", ("rzk_proto",)),
    ("allocator", ("_rjem_", "jemalloc", "malloc", "free", "rallocx", "sdallocx")),
    ("memory copies and compares", ("memmove", "memcpy", "memcmp", "memset")),
]
# ZooKeeper's user time, named by the JVM thread (the first frame inferno writes is the thread's
# name, cut to 15 characters, spaces as '_'). Its Java frames are named only when the JVM wrote
# its perf map at exit.
ZK_THREAD_RULES = [
    ("JVM: garbage collector", ("GC Thread", "G1 ", "VM Thread", "GC_")),
    ("JVM: JIT compiler", ("C1 Compiler", "C2 Compiler", "CompilerThre")),
    ("ZooKeeper: network threads", ("NIOServerCxn", "NIOWorkerThread", "NIOServerCxnFactory")),
    ("ZooKeeper: request pipeline", ("ProcessThread", "SyncThread", "CommitProcessor",
                                     "CommitProcWork", "FollowerRequestProcessor",
                                     "LearnerHandler", "QuorumPeer", "LearnerSender",
                                     "FinalRequestProcessor", "RequestThrottl")),
]


def is_kernel_frame(frame):
    return frame.endswith("_[k]")


def classify(stack, server):
    """One collapsed stack (frames joined by ';', thread name first) -> (kernel?, part)."""
    frames = stack.split(";")
    leaf = frames[-1]
    if is_kernel_frame(leaf):
        for part, needles in KERNEL_RULES:
            if any(needle in frame for frame in frames for needle in needles):
                return True, part
        return True, "other kernel"
    if server == "rzk":
        for part, needles in RZK_USER_RULES:
            if any(needle in leaf for needle in needles):
                return False, part
        return False, "other user"
    thread = frames[0].replace("_", " ")
    for part, needles in ZK_THREAD_RULES:
        if any(needle in thread for needle in needles):
            return False, part
    return False, "JVM: other threads"


def samples_not_periods(folded_path):
    """perf gives each cpu-clock sample its period in nanoseconds, and inferno adds those up:
    divide every count by their greatest common divisor, so that the counts (and the flame
    graph's tooltips) are samples."""
    with open(folded_path) as folded:
        rows = [line.rstrip("\n").rpartition(" ") for line in folded if line.strip()]
    divisor = 0
    for _, _, count in rows:
        divisor = math.gcd(divisor, int(count))
    with open(folded_path, "w") as folded:
        for stack, _, count in rows:
            folded.write(f"{stack} {int(count) // max(divisor, 1)}\n")


def breakdown(folded_path, server):
    parts = collections.Counter()
    kernel = user = 0
    with open(folded_path) as folded:
        for line in folded:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count)
            in_kernel, part = classify(stack, server)
            parts[part] += count
            if in_kernel:
                kernel += count
            else:
                user += count
    return {"samples": kernel + user, "kernel_samples": kernel, "user_samples": user,
            "parts": dict(parts)}


class ProfiledMember(compare.Member):
    """ZooKeeper with the JVM options perf needs to name Java frames: frame pointers kept and
    the JIT's symbol map written at exit (/tmp/perf-<pid>.map)."""

    jvm_options = ("-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions",
                   "-XX:+DumpPerfMapAtExit")


def profile_one(args, kind, base, taken):
    size = 3 if args.ensemble else 1
    cluster = compare.Cluster(kind, args.rzk, base, size, taken, member_class=ProfiledMember)
    perf_data = os.path.join(args.out, f"{kind}.perf.data")
    try:
        ready_s = cluster.start()
        compare.log(f"{kind}: ready after {ready_s:.1f} s")
        if args.server_warmup > 0:  # the same op, so that a JIT has compiled its path
            compare.run_bench(args.rzk, cluster, args.op, args.sessions, args.inflight,
                              args.server_warmup, 0)
        # The figures: the cell without perf, as compare.py measures it.
        measured = compare.run_bench(args.rzk, cluster, args.op, args.sessions, args.inflight,
                                     args.duration, args.warmup)
        # The split: the same cell again under perf, which samples the servers for as long as
        # the bench runs. perf's own cost (copying stacks) lands in no sample, so the shares
        # of its samples split the CPU time measured without it.
        profiled = subprocess.run(
            ["perf", "record", "-q", "-F", str(args.frequency), "--call-graph",
             f"dwarf,{args.stack_bytes}", "-p", cluster.pids(), "-o", perf_data, "--",
             args.rzk, "bench", "--servers", cluster.servers(), "--op", args.op,
             "--clients", str(args.sessions), "--inflight", str(args.inflight),
             "--duration", str(args.duration), "--warmup", str(args.warmup),
             "--read-percent", str(compare.MIXED_READ_PERCENT), "--server-pid", cluster.pids(),
             "--no-cleanup", "--json"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
            timeout=args.duration + args.warmup + PERF_TIMEOUT_EXTRA_S)
        if profiled.returncode != 0:
            raise RuntimeError(f"perf record -- rzk bench failed: {profiled.stderr.strip()}")
        profiled_report = json.loads(profiled.stdout[profiled.stdout.index("{"):])
    finally:
        pids = [m.process.pid for m in cluster.members if m.process is not None]
        cluster.stop()  # ZooKeeper writes its perf map when it exits
    folded_path = os.path.join(args.out, f"{kind}.folded")
    script = subprocess.Popen(["perf", "script", "--no-inline", "-i", perf_data],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with open(folded_path, "w") as folded:
        subprocess.run(["inferno-collapse-perf", "--all"], stdin=script.stdout, stdout=folded,
                       check=True)
    script.wait()
    samples_not_periods(folded_path)
    for pid in pids:  # the JVM's perf maps, read by `perf script` above
        try:
            os.remove(f"/tmp/perf-{pid}.map")
        except FileNotFoundError:
            pass
    with open(folded_path) as folded, open(os.path.join(args.out, f"{kind}.svg"), "w") as svg:
        # Frames narrower than 2 pixels (about 0.17% of the samples) are left out, which keeps
        # the graphs small enough for the repository.
        subprocess.run(["inferno-flamegraph", "--minwidth", "2", "--title",
                        f"{kind} {args.op} {args.sessions} x {args.inflight}"
                        f"{' (3-member ensemble)' if args.ensemble else ''}"],
                       stdin=folded, stdout=svg, check=True)
    if not args.keep_perf_data:
        os.remove(perf_data)
    profiled_cpu_s = sum(s["cpu_seconds"] for s in profiled_report["servers"])
    result = breakdown(folded_path, kind)
    result.update({"server": kind, "ops": measured["ops"],
                   "ops_per_second": measured["ops_per_second"],
                   "server_cpu_seconds": measured["server_cpu_seconds"],
                   "cpu_us_per_op": measured["server_cpu_seconds"] * 1e6 / max(measured["ops"], 1),
                   "p50_us": measured["p50_us"], "p99_us": measured["p99_us"],
                   "profiled_ops_per_second": profiled_report["ops_per_second"],
                   "profiled_cpu_us_per_op":
                       profiled_cpu_s * 1e6 / max(profiled_report["ops"], 1)})
    compare.log(f"{kind}: {result['ops_per_second']:.0f} ops/s, "
                f"{result['cpu_us_per_op']:.1f} µs CPU per op, {result['samples']} samples")
    return result


def us_per_op(result, samples):
    if not result["samples"]:
        return 0.0
    return result["cpu_us_per_op"] * samples / result["samples"]


def report_markdown(args, meta, results):
    cell = (f"{args.op} {args.sessions} × {args.inflight}"
            f"{', 3-member ensemble (all members summed)' if args.ensemble else ', standalone'}")
    lines = [f"#### Where the server CPU goes: {cell}", "",
             f"> {meta['started']} to {meta['ended']}, {args.duration} s measured after "
             f"{args.warmup} s warmup, perf at {args.frequency} Hz with DWARF call stacks; "
             f"rzk {meta['rzk_commit']}. Each server: {args.server_warmup} s of the same load "
             f"unrecorded, then the cell without perf (CPU per op from /proc over the measured "
             f"window: the figures), then again under perf, whose samples split that CPU time "
             f"into the parts below.", ""]
    servers = [r["server"] for r in results]
    lines.append("| part | " + " | ".join(f"{s} µs/op" for s in servers) + " |")
    lines.append("|---|" + "---:|" * len(servers))
    parts = []
    for result in results:
        for part in sorted(result["parts"], key=lambda p: -result["parts"][p]):
            if part not in parts:
                parts.append(part)
    kernel_parts = [p for p, _ in KERNEL_RULES] + ["other kernel"]
    for heading, wanted in (("kernel", lambda p: p in kernel_parts),
                            ("user", lambda p: p not in kernel_parts)):
        totals = [us_per_op(r, r[f"{heading}_samples"]) for r in results]
        lines.append(f"| **{heading}, all** | " + " | ".join(f"**{t:.1f}**" for t in totals)
                     + " |")
        for part in (p for p in parts if wanted(p)):
            lines.append(f"| {part} | " + " | ".join(
                f"{us_per_op(r, r['parts'].get(part, 0)):.1f}" for r in results) + " |")
    lines.append("| **total (from /proc)** | " + " | ".join(
        f"**{r['cpu_us_per_op']:.1f}**" for r in results) + " |")
    lines.append("| ops/s | " + " | ".join(f"{r['ops_per_second']:.0f}" for r in results) + " |")
    lines.append("| under perf: ops/s, CPU µs/op | " + " | ".join(
        f"{r['profiled_ops_per_second']:.0f}, {r['profiled_cpu_us_per_op']:.1f}" for r in results)
                 + " |")
    lines.append("| p50 / p99 ms | " + " | ".join(
        f"{(r['p50_us'] or 0) / 1000:.3f} / {(r['p99_us'] or 0) / 1000:.3f}" for r in results)
                 + " |")
    lines.append("")
    lines.append("Flame graphs: " + ", ".join(f"`{s}.svg`" for s in servers)
                 + " beside this report.")
    return "\n".join(lines) + "\n"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rzk", required=True, help="the release rzk binary")
    parser.add_argument("--op", default="create", choices=compare.OPS)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--server-warmup", type=int, default=5,
                        help="seconds of the same load, unrecorded, on the fresh server first")
    parser.add_argument("--ensemble", action="store_true", help="3-member ensembles")
    parser.add_argument("--servers", default="rzk,zookeeper",
                        help="which servers to profile, in order (rzk, zookeeper)")
    parser.add_argument("--frequency", type=int, default=999, help="perf's sampling rate, Hz")
    parser.add_argument("--stack-bytes", type=int, default=16384,
                        help="user stack perf copies per sample for DWARF unwinding")
    parser.add_argument("--keep-perf-data", action="store_true")
    parser.add_argument("--out", help="directory for the report, stacks and flame graphs")
    return parser.parse_args()


def main():
    args = parse_args()
    for tool in ("perf", "inferno-collapse-perf", "inferno-flamegraph"):
        if shutil.which(tool) is None:
            sys.exit(f"cpu_profile.py: `{tool}` not found; bench/profile.sh installs it")
    args.out = args.out or tempfile.mkdtemp(prefix="rzk-profile-")
    os.makedirs(args.out, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "rzk_commit": commit, "machine": compare.machine_info(args.rzk)}
    base = tempfile.mkdtemp(prefix="rzk-profile-data-")
    taken = set()
    results = []
    try:
        for kind in args.servers.split(","):
            results.append(profile_one(args, kind, base, taken))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    meta["ended"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with open(os.path.join(args.out, "profile.json"), "w") as handle:
        json.dump({"meta": meta, "args": vars(args), "results": results}, handle, indent=1)
    markdown = report_markdown(args, meta, results)
    with open(os.path.join(args.out, "profile.md"), "w") as handle:
        handle.write(markdown)
    print(markdown)
    compare.log(f"written to {args.out}")


if __name__ == "__main__":
    main()
