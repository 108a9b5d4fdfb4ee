"""`harness bench`: how fast clusters come up (a benchmark, not a test).

Two measurements per cluster size, each repeated and summarised as median,
min and max:

* build+teardown of a plain cluster (namespaces, veths, bridges; no daemon);
* with --converge: the native implementation's start -> converged (every
  node OK, every public IP held, the layout unchanged for a RecoverInterval;
  the time is when the final layout was first seen), in poll mode (CTDB's
  schedule: first monitor run 2 s after start-up) and in event mode (the
  first run at once). Targets, for a 2-core machine: 3 nodes within 1 s in
  event mode, 64 nodes within 15 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from harness import hostcheck, runs
from harness.backends.native import NativeBackend
from harness.cluster import Cluster
from harness.cmdline import UsageError, positive_int
from harness.lab import built_cluster
from harness.topology import Topology, default_topology

CONVERGE_TARGETS = {("event", 3): 1.0, ("event", 64): 15.0, ("poll", 64): 15.0}
"""Targets (s) printed beside the measurements (issue 15)."""


def plain_topology(nodes: int) -> Topology:
    """The seed's cluster without bonds, `nodes` nodes, its three public IPs."""
    return default_topology(nodes).plain()


def bench_build(sizes: Sequence[int], repeat: int) -> dict[int, list[float]]:
    """Build+teardown wall time (s) of plain clusters of each size."""
    out: dict[int, list[float]] = {}
    for n in sizes:
        top = plain_topology(n)
        times = []
        for _ in range(repeat):
            state = runs.RunState(runs.new_run_id()).claim()
            t0 = time.monotonic()
            c = Cluster.create(top, state)
            c.destroy()
            times.append(time.monotonic() - t0)
            state.remove()
        out[n] = times
    return out


def converge_once(nodes: int, event_mode: bool) -> float:
    """Seconds from the native daemons' start to the final layout, on a fresh cluster."""
    with built_cluster(plain_topology(nodes)) as cluster:
        backend = NativeBackend(cluster, {"MonitorInterval": 3}, event_mode=event_mode)
        try:
            t0 = time.monotonic()
            backend.start()
            return backend.wait_converged(backend.convergence_timeout() + nodes) - t0
        finally:
            backend.stop()


def _row(label: str, xs: list[float], unit: float, target: str = "") -> str:
    v = [x * unit for x in xs]
    return (f"{label:>12} {statistics.median(v):>9.1f} {min(v):>9.1f} {max(v):>9.1f}"
            f"{target}")


def cmd_bench(args: argparse.Namespace) -> int:
    why = hostcheck.why_cannot_run()
    if why:
        raise UsageError(why)
    print(f"build+teardown of plain clusters, {args.repeat} runs each (ms)")
    print(f"{'nodes':>12} {'median':>9} {'min':>9} {'max':>9}")
    for n, times in bench_build(args.nodes, args.repeat).items():
        print(_row(str(n), times, 1000), flush=True)
    if not args.converge:
        return 0
    print(f"\nnative start -> converged, {args.repeat} runs each (s)")
    print(f"{'nodes, mode':>12} {'median':>9} {'min':>9} {'max':>9}")
    for n in args.nodes:
        for mode in ("poll", "event"):
            times = [converge_once(n, mode == "event") for _ in range(args.repeat)]
            target = CONVERGE_TARGETS.get((mode, n))
            print(_row(f"{n} {mode}", times, 1,
                       f"   target <= {target:g} s" if target is not None else ""), flush=True)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="cluster build and start-up times (a benchmark, not a test)")
    b.add_argument("--nodes", type=positive_int, nargs="+", default=[3, 16, 64])
    b.add_argument("--repeat", type=positive_int, default=7)
    b.add_argument("--converge", action="store_true",
                   help="also the native implementation's start -> converged, poll and "
                        "event mode")
    b.set_defaults(fn=cmd_bench)
