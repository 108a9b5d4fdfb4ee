"""What TCP clients see across a failover: long-lived connections to an smbd
stand-in on every node (harness.services.smbd), registered with the
implementation as smbd registers them; a client keeps 2 busy connections
(a request every 20 ms) and 1 idle one per public IP (harness.record.tcpprobe).

Bounds (harness.assertions.Bounds, from the tunables in force):
- with tickles, a client's TCP outage is the IP's detection + takeover plus
  TICKLE_SLACK: the first tickle round goes out with the first gratuitous ARP
  right after takeip; the client's reset and reconnect take a round trip, plus
  the prober's connect retry (CONNECT_TIMEOUT) and its stall threshold;
- ctdbd's releaseip on the unplugged node runs killtcp on every local
  connection to the IP (registered or not), which waits for clients it cannot
  reach before the takeover run may go on: measured 5.1-6.2 s here
  (Backend.killtcp_release_delay, stated, not derived); the invariant
  "an UNHEALTHY node drops its IPs within the takeover bound" gets the same
  allowance in that test;
- without tickles the clients learn only when their own retransmission
  timer next fires: the outage lasts beyond the takeover by up to one
  backoff step, so it is asserted to end later than the takeover plus
  TICKLE_SLACK (the tickles' bound), and the idle connection is never reset.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import pytest

from harness.assertions import DATING_GRACE, assert_invariants, expect
from harness.record.outages import tcp_outage_across
from harness.record.tcpprobe import CONNECT_TIMEOUT, STALL, TcpProber
from harness.seed import SEED_NODE
from harness.services.tcpclients import TcpClients
from harness.wait import time_scale, wait_until

FAULTY = SEED_NODE
PER_IP, IDLE_PER_IP = 2, 1
TICKLE_SLACK = 0.5 + CONNECT_TIMEOUT + STALL
# ctdbd pushes a node's tickle list to the others every TickleUpdateInterval (20 s by default)
TCP_TUNABLES = {"TickleUpdateInterval": 1}


@pytest.fixture
def tcp(request, backend, timeline, recorder) -> Iterator[TcpProber]:
    """Stand-ins on every node and a TCP client; returns once every node
    knows every connection (the lists are synced), unless nothing registers."""
    register = request.node.get_closest_marker("no_tickles") is None or backend.name == "native"
    with TcpClients(backend, timeline, register=register, per_ip=PER_IP,
                    idle_per_ip=IDLE_PER_IP) as prober:
        yield prober


def outage_spanning(timeline, ip, fault, takeover):
    return functools.partial(tcp_outage_across, timeline, ip, fault.apply_event, takeover)


def moved(backend, pnn):
    return sorted(str(ip) for ip, p in backend.ips(0).items() if p == pnn)


def pull_and_await_takeover(backend, faults, timeline, bounds, ips):
    """Pull FAULTY's public link; (fault, bound, {ip: its add elsewhere}), the
    bound being detection + takeover + the tickle slack + the implementation's
    killtcp release allowance, each add awaited within it."""
    due = backend.monitor_due(FAULTY)
    fault = faults.public_link(FAULTY).apply()
    bound = bounds.detection(due) + bounds.takeover + TICKLE_SLACK * time_scale()
    bound += backend.killtcp_release_delay * time_scale()
    adds = {ip: expect(timeline, "addr.add", after=fault.apply_event, within=(0, bound), ip=ip,
                       where=lambda e: e.data["ns"] != f"n{FAULTY}")
            for ip in ips}
    return fault, bound, adds


@pytest.mark.tunables(**TCP_TUNABLES)
@pytest.mark.breaks_invariants  # checked below, with ctdbd's release allowance
def test_pulled_cable_tickles_reset_the_clients(backend, faults, timeline, bounds, tcp,
                                                 recorder, public_ips):
    ips = moved(backend, FAULTY)
    # every node lists the connections, in 4.17's format on both implementations
    for pnn in range(len(backend.cluster.nodes)):
        lines = backend.ctl(pnn, "gettickles", ips[0]).splitlines()
        assert lines[0] == f"Connections for IP: {ips[0]}", lines
        assert lines[1] == f"Num connections: {len(lines) - 2}", lines
        assert len(lines) - 2 >= PER_IP + IDLE_PER_IP, lines
        assert all(re.fullmatch(rf"SRC: [0-9.]+:\d+   DST: {re.escape(ips[0])}:445", line)
                   for line in lines[2:]), lines
    fault, bound, adds = pull_and_await_takeover(backend, faults, timeline, bounds, ips)
    for ip, add in adds.items():
        _, o = wait_until(outage_spanning(timeline, ip, fault, add), bound + 5,
                          f"TCP outage of {ip}")
        assert o.duration <= bound, (f"{ip}: TCP outage {o.duration:.2f} s, bound {bound:.2f} s\n"
                                     + timeline.window(o.end, before=bound + 1, after=0.5))
        # the idle connection got reset by a tickle (it sent nothing that could fail),
        # so its next request goes over a fresh connection instead of hanging
        # (the reset may be dated before the add: each recorder dates what it reads)
        quick = (0, TICKLE_SLACK * time_scale())
        reset = expect(timeline, "probe.tcpconn", after=add.t - DATING_GRACE,
                       within=(0, DATING_GRACE + quick[1]), ip=ip,
                       where=lambda e: e.data["idle"] and e.data["state"] == "reset")
        expect(timeline, "probe.tcpconn", after=reset, within=quick,
               ip=ip, conn=reset["conn"], where=lambda e: e.data["state"] == "up")
    recorder.stop()
    assert_invariants(timeline, public_ips,
                      takeover_bound=bounds.takeover + backend.killtcp_release_delay)


@pytest.mark.long
@pytest.mark.no_tickles
@pytest.mark.breaks_invariants  # checked below, with ctdbd's release allowance
def test_pulled_cable_without_tickles_waits_for_retransmission(backend, faults, timeline,
                                                                bounds, tcp, recorder,
                                                                public_ips):
    """native: failoverd --no-tickles; ctdbd: the stand-ins register nothing."""
    ips = moved(backend, FAULTY)
    fault, bound, adds = pull_and_await_takeover(backend, faults, timeline, bounds, ips)
    for ip, add in adds.items():
        # TCP's backoff reaches 60 s+ only after minutes; 30 s covers any step here
        _, o = wait_until(outage_spanning(timeline, ip, fault, add), 30, f"TCP outage of {ip}")
        # the busy connections learn at their next retransmission after the takeover,
        # wherever in the backoff that falls (0.2, 0.4, 0.8, 1.6, 3.2 s ... apart)
        assert o.end.t > add.t
        resets = [e for e in timeline.events("probe.tcpconn", after=fault.apply_event, ip=ip)
                  if e["idle"] and e["state"] == "reset"]
        assert not resets, f"{ip}: the idle connection was reset without tickles: {resets}"
    recorder.stop()
    assert_invariants(timeline, public_ips,
                      takeover_bound=bounds.takeover + backend.killtcp_release_delay)


@pytest.mark.backends("native")
@pytest.mark.tunables(**TCP_TUNABLES)
def test_disable_resets_connections_and_clients_reconnect(backend, timeline, bounds, tcp):
    disable_and_expect_resets(backend, timeline, bounds)


@pytest.mark.long
@pytest.mark.backends("ctdb")
@pytest.mark.tunables(**TCP_TUNABLES)
def test_disable_resets_connections_on_ctdbd(backend, timeline, bounds, tcp):
    disable_and_expect_resets(backend, timeline, bounds)


def disable_and_expect_resets(backend, timeline, bounds):
    """`disable` releases the node's IPs: killtcp resets every connection to
    them (busy and idle) and the clients reconnect within the takeover bound."""
    ips = moved(backend, FAULTY)
    mark = timeline.mark("test", "ctl.disable", FAULTY)
    try:
        backend.ctl(FAULTY, "disable")
        bound = bounds.detection(0) + bounds.takeover + TICKLE_SLACK * time_scale()
        for ip in ips:
            # killtcp on the releasing node resets the busy and the idle connections
            for k in range(PER_IP + IDLE_PER_IP):
                reset = expect(timeline, "probe.tcpconn", after=mark, within=(0, bound), ip=ip,
                               conn=k, where=lambda e: e.data["state"] == "reset")
                expect(timeline, "probe.tcpconn", after=reset, within=(0, bound), ip=ip, conn=k,
                       where=lambda e: e.data["state"] == "up")
    finally:
        backend.ctl(FAULTY, "enable")
