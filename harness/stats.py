"""`harness stats`: repeat the pulled-cable scenario at random fault phases and
print the distributions of detection delay, takeover delay and client outage
(ICMP, and TCP: the smbd stand-in on every node, 2 long-lived connections per
public IP from the client, registered for tickles unless --no-tickles).

A benchmark, not a test: it checks the seed's claim that detection takes
about half the monitor interval on average and about the interval at worst.
Each trial waits until the monitor schedule is back to its steady gap
(5 s after a health change, then MonitorInterval), then a uniformly random
phase within one interval, then runs the seed's experiment (harness.seed):
node 2's public cable pulled, UNHEALTHY and the takeover checked against
bounds from the tunables.

`--compare` runs the trials on the native implementation (poll mode) and on
real ctdbd, and tests the two detection distributions against each other and
against the seed's model (harness.detection_compare).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import hostcheck
from harness.assertions import Bounds
from harness.lab import running_cluster
from harness.seed import SEED_NODE, run_seed
from harness.services.tcpclients import TcpClients
from harness.stages import STAGES, Breakdown, breakdown
from harness.topology import default_topology


@dataclass
class Trial:
    detection: float
    takeover: float
    outage: float
    tcp_outage: float | None  # None: no TCP clients (clusters larger than 3 nodes)
    reachable: float | None  # fault -> the client's first answer from the new holder
    stages: Breakdown


def _pct(xs: list[float], q: float) -> float:
    """The q-quantile of sorted xs, nearest rank (no interpolation between trials)."""
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


HEADER = f"{'':<16} {'min':>8} {'median':>8} {'mean':>8} {'p95':>8} {'p99':>8} {'max':>8}"


def _dist(name: str, xs: Sequence[float | None]) -> str:
    seen = sorted(x for x in xs if x is not None)
    if not seen:
        return f"{name:<16} (no data)"
    missing = f"  ({len(xs) - len(seen)} not seen)" if len(seen) < len(xs) else ""
    return (f"{name:<16} {seen[0]:8.3f} {statistics.median(seen):8.3f} "
            f"{statistics.mean(seen):8.3f} {_pct(seen, 0.95):8.3f} {_pct(seen, 0.99):8.3f} "
            f"{seen[-1]:8.3f}{missing}")


def run_trials(backend_name: str, trials: int, interval: int, event_mode: bool,
               seed: int, tickles: bool = True, probe_period: float = 0.02, nodes: int = 3,
               ) -> tuple[list[Trial], list[str]]:
    """The trials' measurements, and the bound violations seen (one line each).

    ctdbd runs with TickleUpdateInterval 1 (its default of 20 s would leave the
    other nodes without a fresh connection's tickle list). In event mode the
    fault's phase against the monitor schedule does not matter (a link event
    runs the monitor), so a trial waits 1-2 s instead of the schedule's 5 s
    plus a random phase."""
    rng = random.Random(seed)
    out: list[Trial] = []
    violations: list[str] = []
    tunables = {"MonitorInterval": interval, "RerecoveryTimeout": 1}
    if backend_name == "ctdb":
        tunables["TickleUpdateInterval"] = 1
    # a large cluster: its status polled on two nodes (each shows every node's
    # flags), no TCP clients (a stand-in server per node), and each trial pulls
    # the cable of whichever node holds the first public IP
    big = nodes > 3
    with running_cluster(default_topology(nodes).plain(), backend_name, tunables,
                         event_mode=event_mode, name="stats", poll_interval=0.05, probe=True,
                         probe_period=probe_period, probe_max_s=24 * 3600,
                         poll_nodes=(0, 1) if big else None,
                         # the stages read the daemons' own timestamps, so 64 log
                         # followers need not wake every 20 ms (the GIL they share
                         # with the prober)
                         log_interval=0.2 if big else 0.02,
                         tickles=tickles) as lab, contextlib.ExitStack() as stack:
        tcp_clients = None
        if not big:
            tcp_clients = TcpClients(lab.backend, lab.timeline,
                                     register=tickles or backend_name == "native")
            stack.enter_context(tcp_clients)  # stopped before the cluster goes
        bounds = Bounds.of(lab.backend)
        first_ip = lab.cluster.topology.public_addresses[0].address.ip
        for k in range(trials):
            lab.backend.wait_converged(lab.backend.convergence_timeout() + nodes)
            if tcp_clients is not None:
                tcp_clients.wait_ready()
            # steady gap, then a random phase
            time.sleep(1 + rng.uniform(0, 1) if event_mode else 5 + rng.uniform(0, interval))
            try:
                pnn = lab.backend.ips(0)[first_ip] if big else SEED_NODE
                r = run_seed(lab, bounds, pnn, tcp=tcp_clients.prober if tcp_clients else None)
            except AssertionError as e:
                violations.append(f"trial {k + 1}: {str(e).splitlines()[0]}")
                print(f"trial {k + 1:>3}/{trials}: BOUND VIOLATED: {violations[-1]}", flush=True)
            else:
                tcp = max(r.tcp_outage.values()) if r.tcp_outage else None
                first = min(r.moved, key=lambda e: e.t)
                stages = breakdown(lab.timeline, r.t0, pnn, first)
                out.append(Trial(r.detection, r.takeover, r.worst_outage, tcp, stages.total,
                                 stages))
                total = "-" if stages.total is None else f"{stages.total * 1000:.1f} ms"
                print(f"trial {k + 1:>3}/{trials}: detection {r.detection:.3f} s, "
                      f"takeover {r.takeover:+.3f} s, client outage {r.worst_outage:.3f} s, "
                      f"TCP outage {'-' if tcp is None else f'{tcp:.3f} s'}, "
                      f"fault -> reachable {total}", flush=True)
            lab.faults.undo_all()
    return out, violations


def cmd_stats(args: argparse.Namespace) -> int:
    why = hostcheck.why_cannot_run()
    if why:
        print(f"harness stats: {why}")
        return 2
    if args.event_mode and args.backend != "native":  # "all" includes ctdb
        print("harness stats: --event-mode is the native implementation's; CTDB has none",
              file=sys.stderr)
        return 2
    if args.report is not None and args.report.is_dir():
        print(f"harness stats: --report {args.report} is a directory; give the page's file "
              f"name, e.g. {args.report / 'report.html'}", file=sys.stderr)
        return 2
    names = ["native", "ctdb"] if args.backend == "all" else [args.backend]
    mode = "event-driven" if args.event_mode else "polling"
    compare_after = not args.event_mode and set(names) == {"native", "ctdb"}
    if compare_after:
        # imported before the trials, not after: a broken scipy must not cost
        # a 20-minute run its result (it costs other commands a third of a second)
        from harness import detection_compare
    lines: list[str] = []
    samples: dict[str, dict[str, list[float]]] = {}
    failed = False
    for name in names:
        probe_period = args.probe_period if args.probe_period is not None else \
            (0.005 if args.event_mode else 0.02)
        res, violations = run_trials(name, args.trials, args.monitor_interval,
                                     args.event_mode, args.seed, tickles=not args.no_tickles,
                                     probe_period=probe_period, nodes=args.nodes)
        samples[name] = {"detection": [t.detection for t in res],
                         "takeover": [t.takeover for t in res],
                         "outage": [t.outage for t in res],
                         "tcp_outage": [t.tcp_outage for t in res if t.tcp_outage is not None]}
        lines += [f"\n{name}, {args.nodes} nodes, {mode} monitor, "
                  f"MonitorInterval {args.monitor_interval} s, "
                  f"tickles {'off' if args.no_tickles else 'on'}, prober every "
                  f"{probe_period * 1000:g} ms, {len(res)} trials (seconds)", HEADER,
                  _dist("detection", samples[name]["detection"]),
                  _dist("takeover", samples[name]["takeover"]),
                  _dist("client outage", samples[name]["outage"]),
                  _dist("TCP outage", samples[name]["tcp_outage"]),
                  _dist("fault->reachable", [t.reachable for t in res]),
                  "stages of fault->reachable (each from the previous stage's end):",
                  *(_dist(f"  {s}", [getattr(t.stages, s) for t in res]) for s in STAGES)]
        if violations:
            failed = True
            lines.append(f"{len(violations)} of {args.trials} trials broke a bound:")
            lines += [f"  {line}" for line in violations]
    compared = None
    if compare_after:
        try:
            compared = detection_compare.compare(samples["native"]["detection"],
                                                 samples["ctdb"]["detection"],
                                                 gap=args.monitor_interval)
        except ValueError as e:
            print(f"harness stats: no comparison: {e}", file=sys.stderr)
            failed = True
    if compared is not None:
        lines += ["", *compared.lines()]
        failed = failed or compared.distinguishable
    if not args.event_mode:
        lines.append(f"seed's claim: mean detection ~ {args.monitor_interval / 2:.1f} s, "
                     f"max ~ {args.monitor_interval} s + run time")
    print("\n".join(lines))
    if args.report is not None:
        from harness.report import stats_page  # matplotlib: imported only when drawing

        page = stats_page.write(args.report, f"harness stats: {', '.join(names)}, {mode}",
                                samples, None if args.event_mode else args.monitor_interval,
                                "\n".join(lines).strip())
        print(f"report: {page}")
    return 1 if failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="detection/takeover/outage distributions (a benchmark)")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--monitor-interval", type=int, default=3)
    p.add_argument("--event-mode", action="store_true")
    p.add_argument("--backend", choices=["native", "ctdb", "all"], default="native",
                   help="all: each implementation in turn, on the same charts; in poll mode "
                        "also a two-sample KS test of their detection delays and each "
                        "against uniform(0, gap) (exit 1 if distinguishable at 5%%)")
    p.add_argument("--report", metavar="FILE", type=Path,
                   default=Path("artifacts/stats/report.html"),
                   help="the HTML page of the distributions (default "
                        "artifacts/stats/report.html)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nodes", type=int, default=3, metavar="N",
                   help="cluster size (default 3: node 2's cable is pulled; larger: the "
                        "holder's of the first public IP, without TCP clients)")
    p.add_argument("--probe-period", type=float, default=None, metavar="S",
                   help="the client prober's period (default 0.005 in event mode, else 0.02)")
    p.add_argument("--no-tickles", action="store_true",
                   help="native: failoverd --no-tickles; ctdb: the smbd stand-ins register "
                        "no connections")
    p.set_defaults(fn=cmd_stats)
