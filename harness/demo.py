"""`harness demo`: the seed's experiment on the native implementation.

3 nodes; public bond0 (active-backup, one slave eth1) where the kernel has
bonding, else the plain variant. Node 2 loses its public link (`ip link set
eth1 down` on the bond slave, as the seed's `ifconfig eth0 down`; with no
bonding, a pulled cable, since 10.interface heals an admin-down plain link).
`status` and `ip` are printed once a second as the seed did, then a summary:
when the node became UNHEALTHY and when its IP answered from another node.
"""

from __future__ import annotations

import argparse
import ipaddress
import threading
import time
from dataclasses import dataclass

from harness import builder, hostcheck, runs
from harness.backends.native import NativeBackend
from harness.cluster import Cluster
from harness.topology import default_topology

FAULTY = 2


@dataclass
class Marks:
    fault: float | None = None
    due: float | None = None  # seconds until node 2's next monitor run, at the fault
    unhealthy: float | None = None
    moved: float | None = None


def watch(backend: NativeBackend, marks: Marks, ips: set[ipaddress.IPv4Address],
          stop: threading.Event, period: float = 0.02) -> None:
    """Poll fast (20 ms) for the two moments the summary reports."""
    while not stop.is_set():
        now = time.monotonic()
        if marks.fault is not None:
            if marks.unhealthy is None:
                st = backend.status(0)
                if "UNHEALTHY" in st.nodes[FAULTY].flags_text:
                    marks.unhealthy = now
            if marks.moved is None:
                held = backend.kernel_holders()
                if all(held[ip] and FAULTY not in held[ip] for ip in ips):
                    marks.moved = time.monotonic()
        stop.wait(period)


def stamp() -> str:
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def run_demo(monitor_interval: int, event_mode: bool, seconds: int | None) -> int:
    why = hostcheck.why_cannot_run()
    if why:
        print(f"harness demo: {why}")
        return 2
    top = default_topology()
    bonded = builder.kernel_has_bonding()
    if not bonded:
        top = top.plain()
    tunables = {"MonitorInterval": monitor_interval}
    state = runs.RunState(runs.new_run_id()).claim()
    print(f"building 3 nodes in namespaces (run {state.run_id}); public interface "
          f"{'bond0 over eth1' if bonded else 'eth1 (no bonding in this kernel: plain variant)'}")
    with Cluster.create(top, state) as cluster:
        backend = NativeBackend(cluster, tunables, event_mode=event_mode)
        try:
            t0 = time.monotonic()
            backend.start()
            backend.wait_converged(timeout=monitor_interval + 15)
            print(f"cluster converged {time.monotonic() - t0:.1f} s after start "
                  f"(MonitorInterval {monitor_interval} s"
                  f"{', event-driven monitor' if event_mode else ''})\n")
            before = backend.ips(FAULTY)
            lost = {ip for ip, p in before.items() if p == FAULTY}
            marks, stop = Marks(), threading.Event()
            watcher = threading.Thread(target=watch, args=(backend, marks, lost, stop),
                                       daemon=True)
            watcher.start()
            node = cluster.nodes[FAULTY]
            print(f"{stamp()}")
            print(backend.ctl(FAULTY, "status") + backend.ctl(FAULTY, "ip"), end="")
            marks.due = backend.monitor_due(FAULTY)
            if bonded:
                fault = "ip link set eth1 down (the bond's only slave) on node 2"
                marks.fault = time.monotonic()
                node.set_link("eth1", up=False)
            else:
                fault = "pulled node 2's public cable (switch end of eth1 down)"
                marks.fault = time.monotonic()
                node.cable("eth1").pull()
            print(f"\n>>> {stamp()}  FAULT: {fault}\n")
            limit = seconds if seconds is not None else monitor_interval + 12
            end = marks.fault + limit
            tick = marks.fault
            settled_at = None
            while time.monotonic() < end:
                tick += 1.0
                time.sleep(max(0.0, tick - time.monotonic()))
                print(stamp())
                print(backend.ctl(FAULTY, "status") + backend.ctl(FAULTY, "ip"), end="")
                if marks.moved is not None and settled_at is None:
                    settled_at = time.monotonic()
                if settled_at is not None and time.monotonic() - settled_at > 2:
                    break
            stop.set()
            watcher.join()
            summary(marks, monitor_interval, event_mode)
        finally:
            backend.stop()
    state.remove()
    return 0 if marks.moved is not None else 1


def summary(marks: Marks, interval: int, event_mode: bool) -> None:
    assert marks.fault is not None

    def rel(t: float | None) -> str:
        return "never" if t is None else f"+{t - marks.fault:.3f} s"

    print("\n=== summary (times relative to the fault) ===")
    print(f"fault applied         {rel(marks.fault)}")
    print(f"node 2 UNHEALTHY      {rel(marks.unhealthy)}   (detection delay)")
    print(f"its IPs on other node {rel(marks.moved)}   (end to end)")
    if marks.unhealthy is not None and marks.moved is not None:
        print(f"takeover delay        {marks.moved - marks.unhealthy:.3f} s after UNHEALTHY")
    if event_mode:
        print("expected: detection within milliseconds (event-driven monitor)")
    else:
        print(f"node 2's next monitor run was due {marks.due:.3f} s after the fault: detection "
              f"cannot come earlier (CTDB waits for its monitor event; gaps are 5 s after a "
              f"health change, then MonitorInterval {interval} s, so about half of that on "
              f"average and at most the gap plus the run time)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the seed's failover experiment on the native implementation")
    p.add_argument("--monitor-interval", type=int, default=15,
                   help="MonitorInterval in seconds (CTDB's default, as in the seed: 15)")
    p.add_argument("--event-mode", action="store_true",
                   help="event-driven interface monitor (failover in milliseconds)")
    p.add_argument("--seconds", type=int, default=None,
                   help="how long to print status after the fault (default: interval + 12)")
    p.set_defaults(fn=lambda a: run_demo(a.monitor_interval, a.event_mode, a.seconds))
