"""`harness stats`' per-stage breakdown of an event-mode failover, on a real run:
each stage's end is found on the timeline, and the stages add up to what the
client saw (its outage, read by harness.record.outages, a separate path)."""

from __future__ import annotations

from harness.assertions import Bounds
from harness.lab import running_cluster
from harness.record import outages
from harness.seed import SEED_NODE, run_seed
from harness.stages import STAGES, breakdown
from harness.topology import default_topology

DATING = 0.05
"""How much earlier than the previous stage's end a stage's end may be dated:
netlink events are dated when the recorder reads them, log lines by the daemon."""


def test_event_mode_failover_stages_are_found_and_add_up() -> None:
    with running_cluster(default_topology().plain(), "native", {"MonitorInterval": 3},
                         event_mode=True, name="stages", probe=True, probe_period=0.005,
                         probe_max_s=120) as lab:
        r = run_seed(lab, Bounds.of(lab.backend))
        first = min(r.moved, key=lambda e: e.t)
        b = breakdown(lab.timeline, r.t0, SEED_NODE, first)
        spans = {s: getattr(b, s) for s in STAGES}
        assert all(v is not None for v in spans.values()), spans
        assert all(v >= -DATING for v in spans.values() if v is not None), spans
        ip = first["ip"]
        o = outages(lab.timeline, ip, since=r.t0)[0]
        assert o.end is not None and b.total is not None
        assert abs((o.end.t - r.t0) - b.total) < 1e-6, (o, b)
        # the event mode's bound: detection within 0.2 s, takeover within its bound
        assert b.total <= 0.2 + Bounds.of(lab.backend).takeover + 1.0
