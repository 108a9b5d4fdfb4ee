"""`harness demo`: the seed's experiment on the native implementation.

3 nodes; public bond0 (active-backup, one slave eth1) where the kernel has
bonding, else the plain variant. Node 2 loses its public link (the bond
slave set down, as the seed's `ifconfig eth0 down`; with no bonding, a
pulled cable, since 10.interface heals an admin-down plain link). `status`
and `ip` are printed once a second as the seed did, while harness.seed
measures on the lab's timeline when the node became UNHEALTHY and when its
IPs answered from another node, against bounds from the tunables.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from harness import hostcheck
from harness.assertions import Bounds
from harness.backends.base import Backend
from harness.lab import Lab, running_cluster
from harness.record import Event
from harness.report.runs import info_for, save_run
from harness.seed import SEED_NODE, SeedResult, run_seed, seed_topology


def stamp() -> str:
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def show(backend: Backend) -> None:
    """`ctdb status` and `ctdb ip` on the faulty node, as the seed polled them."""
    print(stamp())
    print(backend.ctl(SEED_NODE, "status") + backend.ctl(SEED_NODE, "ip"), end="", flush=True)


def print_every_second(backend: Backend, start: float, stop: threading.Event) -> None:
    tick = start
    while not stop.is_set():
        tick += 1.0
        if stop.wait(max(0.0, tick - time.monotonic())):
            break
        show(backend)


def run_demo(monitor_interval: int, event_mode: bool, seconds: int | None,
             report: Path | None = None) -> int:
    why = hostcheck.why_cannot_run()
    if why:
        print(f"harness demo: {why}")
        return 2
    top = seed_topology()
    tunables = {"MonitorInterval": monitor_interval}
    public = ("bond0 over eth1" if top.has_bonds
              else "eth1 (no bonding in this kernel: plain variant)")
    print(f"building 3 nodes in namespaces; public interface {public}")
    t_start = time.monotonic()
    with running_cluster(top, "native", tunables, event_mode=event_mode, name="demo",
                         poll_interval=0.05, probe=True) as lab:
        print(f"cluster {lab.cluster.run_id} converged {lab.ready_at - t_start:.1f} s after "
              f"the build started (MonitorInterval {monitor_interval} s"
              f"{', event-driven monitor' if event_mode else ''})\n")
        show(lab.backend)
        rc = experiment(lab, monitor_interval, event_mode, seconds)
        if report is not None:
            files = save_run(lab.timeline, info_for("harness demo", lab.backend,
                                                    "passed" if rc == 0 else "failed"), report)
            print(f"report: {files.html}\ntrace (Perfetto, chrome://tracing): {files.trace}")
        return rc


def experiment(lab: Lab, interval: int, event_mode: bool, seconds: int | None) -> int:
    stop = threading.Event()
    printer = threading.Thread(target=print_every_second,
                               args=(lab.backend, time.monotonic(), stop), daemon=True)
    bounds = Bounds.of(lab.backend, slack=2.0)  # the run time of a full monitor event

    def announce(e: Event) -> None:
        if e.kind == "fault.apply":
            print(f"\n>>> {stamp()}  FAULT: {e.data['desc']}\n", flush=True)

    lab.timeline.subscribe(announce)
    printer.start()
    try:
        result = run_seed(lab, bounds)
    except AssertionError as e:
        stop.set()
        printer.join()
        print(f"\nharness demo: the seed's bounds were not met:\n{e}")
        return 1
    # go on printing: until `seconds` after the fault, else 2 s after the move
    end = result.t0 + seconds if seconds is not None else time.monotonic() + 2
    stop.wait(max(0.0, end - time.monotonic()))
    stop.set()
    printer.join()
    summary(result, interval, event_mode)
    return 0


def summary(r: SeedResult, interval: int, event_mode: bool) -> None:
    print("\n=== summary (times relative to the fault) ===")
    print(f"fault                 {r.fault.describe()}")
    print(f"node {SEED_NODE} UNHEALTHY      +{r.detection:.3f} s   (detection delay)")
    print(f"its IPs on other node +{r.end_to_end:.3f} s   (end to end, kernel view)")
    print(f"takeover delay        {r.takeover:.3f} s after UNHEALTHY")
    print(f"client outage (ICMP)  {r.worst_outage:.3f} s")
    if event_mode:
        print("expected: detection within milliseconds (event-driven monitor)")
    else:
        print(f"node {SEED_NODE}'s next monitor run was due {r.due:.3f} s after the fault: "
              f"detection cannot come earlier (CTDB waits for its monitor event; gaps are 5 s "
              f"after a health change, then MonitorInterval {interval} s, so about half of "
              f"that on average and at most the gap plus the run time)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the seed's failover experiment on the native implementation")
    p.add_argument("--monitor-interval", type=int, default=15,
                   help="MonitorInterval in seconds (CTDB's default, as in the seed: 15)")
    p.add_argument("--event-mode", action="store_true",
                   help="event-driven interface monitor (failover in milliseconds)")
    p.add_argument("--seconds", type=int, default=None,
                   help="print status until this many seconds after the fault "
                        "(default: 2 s after the IPs moved)")
    p.add_argument("--report", metavar="DIR", type=Path, default=Path("artifacts/demo"),
                   help="where the run's timeline, HTML report and trace go "
                        "(default artifacts/demo)")
    p.set_defaults(fn=lambda a: run_demo(a.monitor_interval, a.event_mode, a.seconds,
                                         a.report))
