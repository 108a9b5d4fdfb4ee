"""Daemon faults: killed, hung (SIGSTOP), and a hung monitor script.

A killed or hung daemon cannot release its addresses, so its node keeps them
in the kernel while the survivors take them over (CTDB behaves the same: a
fencing mechanism outside CTDB must deal with it). The invariant check is
told so through `duplicates_allowed_on`.
"""

import pytest

from harness.assertions import expect, expect_moved, has_flag
from harness.wait import wait_until


def pick_victim(backend) -> int:
    """A node other than the leader, so no re-election is part of the timing."""
    leader = backend.agreed_leader()
    return next(p for p in (2, 1, 0) if p != leader)


def held_by(backend, pnn) -> list[str]:
    return sorted(str(ip) for ip, p in backend.ips(0).items() if p == pnn)


def test_killed_daemon_disconnected_and_ips_moved(backend, faults, timeline, bounds,
                                                  duplicates_allowed_on):
    victim = pick_victim(backend)
    duplicates_allowed_on.add(victim)
    ips = held_by(backend, victim)
    fault = faults.kill_daemon(victim, restart=True).apply()
    gone = expect(timeline, "flags", node=victim, after=fault.apply_event,
                  within=(0, bounds.keepalive), where=has_flag("DISCONNECTED"))
    expect_moved(timeline, ips, off=victim, after=fault.apply_event, ref=gone,
                 within=bounds.keepalive + bounds.takeover, takeover=bounds.takeover)
    fault.undo()  # restart: start-up removes the stale addresses (CTDB's init)
    wait_until(lambda: backend.converged() is None, backend.convergence_timeout(),
               "restarted node rejoined, duplicates gone")


@pytest.mark.tunables(KeepaliveInterval=1, KeepaliveLimit=3)
def test_hung_daemon_disconnected_within_keepalive_bound(backend, faults, timeline, bounds,
                                                         duplicates_allowed_on):
    victim = pick_victim(backend)
    duplicates_allowed_on.add(victim)
    ips = held_by(backend, victim)
    fault = faults.hang_daemon(victim).apply()
    gone = expect(timeline, "flags", node=victim, after=fault.apply_event,
                  within=(bounds.keepalive_interval * (bounds.keepalive_limit - 1),
                          bounds.keepalive), where=has_flag("DISCONNECTED"))
    expect_moved(timeline, ips, off=victim, after=fault.apply_event, ref=gone,
                 within=bounds.keepalive + bounds.takeover, takeover=bounds.takeover)
    fault.undo()


@pytest.mark.tunables(EventScriptTimeout=2, MonitorTimeoutCount=3)
def test_hung_monitor_script_counts_timeouts_then_unhealthy(backend, faults, timeline, bounds):
    """Timeouts count as OK until MonitorTimeoutCount in a row; then UNHEALTHY."""
    victim = 2
    count = backend.tunable("MonitorTimeoutCount")
    timeout = backend.tunable("EventScriptTimeout")
    fault = faults.hang_monitor(victim, seconds=3600).apply()
    # each timed-out run takes `timeout` s, then the next is armed one gap later
    lo = (count - 1) * timeout
    hi = bounds.detection() + count * (timeout + bounds.monitor_gap)
    expect(timeline, "flags", node=victim, after=fault.apply_event, within=(lo, hi),
           where=has_flag("UNHEALTHY"))
    fault.undo()
    expect(timeline, "flags", node=victim, after=fault.undo_event,
           within=(0, timeout + bounds.recovery), where=lambda e: "UNHEALTHY" not in e["flags"])
