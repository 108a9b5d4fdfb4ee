"""A deliberately broken implementation must be caught: the invariant check
fails, with a readable timeline excerpt, on an injected duplicate IP and on
an IP left on an UNHEALTHY node. (These tests break the cluster on purpose,
so they check the invariants themselves and then repair what they broke.)"""

import pytest

from harness.assertions import (
    DATING_GRACE,
    Violation,
    expect,
    expect_none,
    find_violations,
    has_flag,
)
from harness.seed import SEED_NODE
from harness.wait import time_scale, wait_until

pytestmark = [pytest.mark.backends("native"), pytest.mark.breaks_invariants]
FAULTY = SEED_NODE  # the node the seed took down


def test_injected_duplicate_ip_is_split_brain(cluster, backend, timeline, recorder, public_ips,
                                              bounds):
    ip, holder = next((str(i), p) for i, p in backend.ips(0).items() if p != 0)
    mark = timeline.mark("test", "note", text="inject duplicate")
    cluster.nodes[0].run(["ip", "addr", "add", f"{ip}/24", "dev", "eth1"])
    expect(timeline, "addr.add", after=mark, within=(0, 1), ip=ip, ns="n0")

    def split_brain() -> list[Violation]:
        found = find_violations(timeline, public_ips, takeover_bound=bounds.takeover)
        return [v for v in found if "split brain" in v.what and ip in v.what]
    # an overlap counts once it outlasts the listeners' dating grace
    _, found = wait_until(split_brain, 1 + DATING_GRACE * time_scale(), "split brain seen")
    text = found[0].render(timeline)
    assert "INVARIANT BROKEN" in text and "addr.add" in text and ip in text
    # node 0's daemon may already have released the stray address (as ctdbd's
    # monitor does); either way it must be gone from node 0 afterwards
    cluster.nodes[0].run(["ip", "addr", "del", f"{ip}/24", "dev", "eth1"], check=False)
    expect(timeline, "addr.del", after=mark, within=(0, 5), ip=ip, ns="n0")


def test_ip_left_on_unhealthy_node_is_caught(cluster, backend, faults, timeline, recorder,
                                             public_ips, bounds):
    """A daemon that fails to release: node 2's is frozen once UNHEALTHY (so it
    cannot repair anything, as the real one does within a RecoverInterval) and
    an IP is put on node 2 by hand."""
    ip = next(str(i) for i, p in backend.ips(0).items() if p != FAULTY)
    fault = faults.pull_cable(FAULTY, "eth1").apply()
    # node 2's own view must say UNHEALTHY before it freezes (the invariant
    # judges health by a node's own account)
    bad = expect(timeline, "flags", node=FAULTY, after=fault.apply_event,
                 within=(0, bounds.detection()),
                 where=lambda e: has_flag("UNHEALTHY")(e) and e.data["by"] == FAULTY)
    frozen = faults.hang_daemon(FAULTY).apply()
    cluster.nodes[FAULTY].run(["ip", "addr", "add", f"{ip}/24", "dev", "eth1"])
    expect(timeline, "addr.add", after=bad, within=(0, 2), ip=ip, ns=f"n{FAULTY}")
    # let the takeover bound pass while node 2 is still UNHEALTHY and holds it
    expect_none(timeline, "flags", node=FAULTY, after=bad, for_s=bounds.takeover + 0.3,
                where=lambda e: "UNHEALTHY" not in e.data["flags"])
    found = find_violations(timeline, public_ips, takeover_bound=bounds.takeover)
    left = [v for v in found if f"on node {FAULTY}" in v.what and ip in v.what]
    assert left, found
    assert "INVARIANT BROKEN" in left[0].render(timeline)
    cluster.nodes[FAULTY].run(["ip", "addr", "del", f"{ip}/24", "dev", "eth1"])
    frozen.undo()
