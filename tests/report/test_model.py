"""What the page shows, read from a recorded real run (8 nodes, node 0's
public cable pulled): the lanes agree with the events they come from."""

from __future__ import annotations

import pytest
from recorded_runs import recorded

from harness.report.model import build


@pytest.fixture(scope="module")
def run():
    tl, info = recorded("n8-failed")
    return tl, build(tl, info)


def lane(data, name):
    (found,) = [x for x in data.lanes if x.name == name]
    return found


def test_fault_span_and_the_pulled_cable(run):
    tl, data = run
    apply = tl.first("fault.apply")
    undo = tl.first("fault.undo")
    (fault,) = data.faults
    assert fault.start == pytest.approx(apply.t - data.t0)
    assert fault.end == pytest.approx(undo.t - data.t0)
    assert apply.node == 0 and "cable eth1 pulled" in fault.label
    cable = [s for s in lane(data, "n0 eth1").spans if s.label == "no carrier"]
    assert len(cable) == 1  # carrier lost at the pull and back at the plug, within 50 ms
    assert cable[0].start == pytest.approx(fault.start, abs=0.05)
    assert cable[0].end == pytest.approx(fault.end, abs=0.05)


def test_flags_ip_holder_and_delays(run):
    tl, data = run
    apply = tl.first("fault.apply")
    bad = [s for s in lane(data, "n0 flags").spans if s.label == "UNHEALTHY"]
    assert len(bad) == 1
    (detection, takeover, outage) = data.delays
    assert detection.what == "fault -> UNHEALTHY"
    assert detection.seconds == pytest.approx(bad[0].start - (apply.t - data.t0))
    holders = [s.label for s in lane(data, "203.0.113.201").spans]
    assert holders[0] == "n0" and holders[-1] not in ("n0", "none")
    moved = next(s for s in lane(data, "203.0.113.201").spans if s.label == holders[-1])
    assert takeover.seconds == pytest.approx(moved.start - bad[0].start)
    # where the kernel moved the IP before the status poll saw it: marked
    assert lane(data, "203.0.113.201").marks
    icmp = lane(data, "203.0.113.201 ICMP").spans
    assert icmp and outage.seconds == pytest.approx(max(s.duration for s in icmp), abs=0.01)
    assert all(0 <= t <= data.duration for x in data.lanes for t in x.ticks)
    assert len(lane(data, "n3 flags").ticks) >= 3  # a monitor run every 3 s on a healthy node


def test_delays_show_the_bound_the_test_asserted():
    """expect() and expect_moved() put their bounds on the timeline; the
    report shows those, not bounds recomputed from the tunables."""
    from harness.assertions import expect, expect_moved

    tl, info = recorded("n8-failed")
    generic = {d.what: d for d in build(tl, info).delays}
    assert not any(d.asserted for d in generic.values())
    apply = tl.first("fault.apply")
    bad = expect(tl, "flags", node=0, after=apply, within=(0, 7.25),
                 where=lambda e: "UNHEALTHY" in e.get("flags", ()))
    ips = [d.what.split()[-1] for d in generic.values() if d.what.startswith("client outage")]
    expect_moved(tl, ips, off=0, after=apply, within=30, ref=bad, takeover=2.75)
    shown = {d.what: d for d in build(tl, info).delays}
    assert shown["fault -> UNHEALTHY"].bound == 7.25
    assert shown["UNHEALTHY -> IP moved"].bound == 2.75
    assert shown["fault -> UNHEALTHY"].asserted and shown["UNHEALTHY -> IP moved"].asserted
    assert generic["fault -> UNHEALTHY"].bound != 7.25
