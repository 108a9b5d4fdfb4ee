"""The timeline and its recorders: queries, waits, saving, netlink listeners,
status poller, log follower, client prober, and the recorder's overhead."""

from __future__ import annotations

import json
import threading
import time

import pytest
from tenacity import retry, stop_after_delay, wait_fixed

from harness.faults import PullCable
from harness.record import (
    ClientProber,
    Event,
    LogSpec,
    Recorder,
    Timeline,
    TimelineTimeout,
    address_holders,
    ip_holders,
    outages,
    status_flags,
)

IP1 = "203.0.113.201"


# -- the Timeline itself -----------------------------------------------------------

def test_queries_filter_and_sort_late_events():
    tl = Timeline("q", t0=100.0)
    tl.mark("netlink", "link.carrier", 1, t=101.0, ifname="eth1", up=False)
    tl.mark("status", "flags", 1, t=103.0, flags=["UNHEALTHY"], by=0)
    tl.mark("fault", "fault.apply", 1, t=100.5, fault="PullCable")  # recorded late
    tl.mark("netlink", "link.carrier", 2, t=102.0, ifname="eth1", up=True)
    assert [e.t for e in tl.events()] == [100.5, 101.0, 102.0, 103.0]
    fault = tl.first("fault.apply")
    assert fault is not None and fault["fault"] == "PullCable"
    assert tl.first("link.*", after=fault).node == 1
    assert tl.first("link.carrier", after=fault, up=True).node == 2
    assert tl.first("link.carrier", node=2, where=lambda e: not e["up"]) is None
    assert tl.first(("flags", "link.carrier"), after=101.5).kind == "link.carrier"
    assert tl.last("link.carrier").node == 2
    assert len(tl.events(node=1)) == 3 and tl.events(node=None) == []
    assert len(tl.events(node=[1, 2], since=101.0, until=102.0)) == 2
    assert tl.events(source="status")[0]["by"] == 0


def test_first_after_an_event_excludes_it():
    tl = Timeline("x")
    a = tl.mark("t", "k", t=1.0)
    b = tl.mark("t", "k", t=1.0)
    assert tl.first("k", after=a) == b


def test_wait_for_sees_events_from_other_threads_and_late_ones():
    tl = Timeline("w")
    t_call = time.monotonic()
    threading.Timer(0.05, lambda: tl.mark("netlink", "addr.add", 0, ip=IP1)).start()
    ev = tl.wait_for("addr.add", ip=IP1, after=t_call, timeout=5)
    assert ev.node == 0 and ev.t >= t_call
    # an event dated before the call, but after `after`, counts (the prober dates late)
    threading.Timer(0.05, lambda: tl.mark("probe", "probe.icmp", None, t=t_call + 0.001,
                                          ok=False)).start()
    assert tl.wait_for("probe.icmp", after=t_call, timeout=5)["ok"] is False


def test_wait_for_times_out_with_a_window():
    tl = Timeline("w")
    tl.mark("fault", "fault.apply", 2, fault="AdminDown")
    with pytest.raises(TimelineTimeout) as exc:
        tl.wait_for("flags", node=2, after=0, timeout=0.1)
    msg = str(exc.value)
    assert "not seen in 0.1 s" in msg and "fault.apply" in msg


def test_wait_for_can_be_cancelled():
    tl = Timeline("w")
    cancel = threading.Event()
    threading.Timer(0.05, lambda: (cancel.set(), tl.wake())).start()
    t0 = time.monotonic()
    with pytest.raises(TimelineTimeout, match="cancelled"):
        tl.wait_for("never", after=0, timeout=10, cancel=cancel)
    assert time.monotonic() - t0 < 5


def test_window_save_and_load(tmp_path):
    tl = Timeline("saved", t0=10.0)
    ref = tl.mark("fault", "fault.apply", 1, t=11.0, fault="PullCable", ports=["eth1"])
    tl.mark("netlink", "link.carrier", 1, t=11.0012, ifname="eth1", up=False)
    tl.mark("status", "flags", 1, t=20.0, flags=["UNHEALTHY"])
    text = tl.window(ref, before=1, after=1)
    assert ">>" in text and "1.2  netlink" in text and "UNHEALTHY" not in text
    jl, txt = tl.save(tmp_path)
    lines = jl.read_text().splitlines()
    assert json.loads(lines[0])["clock"] == "CLOCK_MONOTONIC" and len(lines) == 4
    assert "link.carrier" in txt.read_text()
    back = Timeline.load(jl)
    assert [(e.t, e.kind, e.node, e.data) for e in back] == \
           [(e.t, e.kind, e.node, e.data) for e in tl]
    assert back.t0 == 10.0


def test_data_is_made_json_safe():
    import ipaddress
    tl = Timeline("j")
    e = tl.mark("t", "k", ip=ipaddress.ip_address(IP1), nodes={2, 1}, pair=(1, 2))
    assert e.data == {"ip": IP1, "nodes": [1, 2], "pair": [1, 2]}
    assert tl.first("k", ip=ipaddress.ip_address(IP1)) is e


def test_x_table_parsers():
    st = ("|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|"
          "PartiallyOnline|ThisNode|\n|0|198.18.0.1|0|0|0|0|0|0|0|0|Y|\n"
          "|1|198.18.0.2|1|0|0|0|1|0|1|0|N|\n")
    assert status_flags(st) == {0: ("OK",), 1: ("DISCONNECTED", "UNHEALTHY", "INACTIVE")}
    assert ip_holders("|Public IP|Node|\n|203.0.113.201|2|\n|203.0.113.202|-1|\n") == {
        "203.0.113.201": 2, "203.0.113.202": None}
    with pytest.raises(ValueError):
        status_flags("garbage\n")


def test_address_holders_replays_addr_events():
    tl = Timeline("h")
    tl.mark("netlink", "addr.add", 0, t=1.0, ns="n0", ip=IP1)
    tl.mark("netlink", "addr.add", 1, t=2.0, ns="n1", ip=IP1)
    tl.mark("netlink", "addr.del", 0, t=3.0, ns="n0", ip=IP1)
    assert address_holders(tl, at=2.5) == {IP1: {"n0", "n1"}}
    assert address_holders(tl, at=3.5, ips=[IP1]) == {IP1: {"n1"}}


# -- recorders on a real cluster -----------------------------------------------------

def _addr(node, ip, add=True):
    node.netlink(lambda r: r.addr("add" if add else "del",
                                  index=r.link_lookup(ifname="eth1")[0], address=ip,
                                  prefixlen=24))


def test_netlink_listeners_see_links_and_addresses(cluster, timeline):
    n1 = cluster.nodes[1]
    with Recorder(cluster, timeline, switch=True) as rec:
        start = timeline.first("recorder.start")
        initial = timeline.events("addr.add", node=1)
        assert {e["ip"] for e in initial} == {"198.18.0.2", "203.0.113.2"}
        assert all(e["initial"] for e in initial)
        _addr(n1, IP1)
        ev = timeline.wait_for("addr.add", node=1, ip=IP1, after=start, timeout=5)
        assert ev["ifname"] == "eth1" and ev["ns"] == "n1"
        assert address_holders(timeline, ips=[IP1]) == {IP1: {"n1"}}
        pull = timeline.note("pull")
        cable = PullCable(cluster, 1, "eth1", timeline).apply()
        down = timeline.wait_for("link.carrier", node=1, ifname="eth1", up=False, after=pull,
                                 timeout=5)
        timeline.wait_for("link.operstate", node=1, ifname="eth1", state="DOWN", after=start,
                          timeout=5)
        timeline.wait_for("link.admin", node=None, ns="sw", ifname="n1-eth1", up=False,
                          after=start, timeout=5)
        cable.undo()
        timeline.wait_for("link.carrier", node=1, up=True, after=down, timeout=5)
        _addr(n1, IP1, add=False)
        timeline.wait_for("addr.del", node=1, ip=IP1, after=start, timeout=5)
    assert address_holders(timeline, ips=[IP1]) == {IP1: set()}
    assert all(not s.errors for s in rec.stats())
    # every listener thread ended (and closed its socket, which would pin the namespace)
    assert not any(c.thread.is_alive() for c in rec.components)


def test_status_poller_emits_changes_only(cluster, standin, timeline):
    with Recorder(cluster, timeline, standin, poll_interval=0.02, netlink=False):
        start = timeline.first("recorder.start")
        assert {e.node for e in timeline.events("flags", where=lambda e: e["by"] == 0)} \
            == {0, 1, 2}
        assert timeline.first("holder", ip=IP1).node == 0
        polls = standin.calls
        standin.flags[2] = {"UNHEALTHY"}
        ev = timeline.wait_for("flags", node=2, after=start, timeout=5,
                               where=lambda e: "UNHEALTHY" in e["flags"])
        assert ev["prev"] == ["OK"]
        standin.holders[IP1] = 1
        mv = timeline.wait_for("holder", ip=IP1, node=1, after=start, timeout=5)
        assert mv["prev"] == 0
        # every observer reports the change once
        for by in range(3):
            timeline.wait_for("flags", node=2, after=start, timeout=5,
                              where=lambda e, by=by: e["by"] == by and not e.get("initial"))
        standin.broken.add(1)
        timeline.wait_for("ctl.error", node=1, cmd="status", after=start, timeout=5)
        standin.broken.clear()
        timeline.wait_for("ctl.ok", node=1, cmd="status", after=start, timeout=5)
        assert standin.calls > polls
    # changes only: one UNHEALTHY event per observer in all those polls
    assert len(timeline.events("flags", node=2,
                               where=lambda e: "UNHEALTHY" in e["flags"])) == 3
    assert len(timeline.events("ctl.error", cmd="status")) == 1


def test_log_follower(tmp_path, timeline):
    from harness.record import LogFollower
    log = tmp_path / "d.log"
    stop = threading.Event()
    f = LogFollower(LogSpec(log, node=1, pattern=r"UNHEALTHY|takeover"), timeline, stop)
    f.start()
    assert f.ready.wait(5)
    with open(log, "a") as fh:  # the file appears after the follower started
        fh.write("monitor ok\nNode became UNHEALTHY\npartial")
    ev = timeline.wait_for("log", node=1, after=0, timeout=5)
    assert ev["line"] == "Node became UNHEALTHY"
    with open(log, "a") as fh:
        fh.write(" takeover line\n")
    assert timeline.wait_for("log", after=ev, timeout=5)["line"] == "partial takeover line"
    log.write_text("takeover after truncation\n")  # truncated and rewritten
    timeline.wait_for("log", line="takeover after truncation", after=ev, timeout=5)
    stop.set()
    f.join()
    assert not f.thread.is_alive()
    assert "monitor ok" not in [e["line"] for e in timeline.events("log")]


def test_recorder_follows_backend_logs(cluster, standin, timeline):
    with Recorder(cluster, timeline, standin, poll_interval=0.05, netlink=False,
                  log_pattern="hello"):
        with open(standin.log_path(2), "a") as fh:
            fh.write("noise\nhello from node 2\n")
        ev = timeline.wait_for("log", node=2, after=0, timeout=5)
        assert ev["line"] == "hello from node 2"


def test_prober_sees_moves_and_keeps_the_clients_arp_cache_honest(cluster, timeline):
    """ARP probes show the new holder at once; the client's own cache (and so its
    pings) keeps the old MAC until a gratuitous ARP, as a real client's would."""
    n0, n1 = cluster.nodes[0], cluster.nodes[1]
    mac0, mac1 = n0.link("eth1").mac, n1.link("eth1").mac
    _addr(n0, IP1)
    with ClientProber(cluster, timeline, ips=[IP1], period=0.02, duration=30) as pr:
        first = timeline.wait_for("probe.icmp", ip=IP1, ok=True, timeout=5, after=0)
        assert first.node == 0 and first["mac"] == mac0
        assert timeline.wait_for("probe.arp", ip=IP1, timeout=5, after=0)["macs"] == [mac0]
        timeline.wait_for("probe.neigh", ip=IP1, mac=mac0, timeout=5, after=0)
        move = timeline.note("move without gratuitous ARP")
        _addr(n0, IP1, add=False)
        _addr(n1, IP1)
        arp = timeline.wait_for("probe.arp", ip=IP1, after=move, timeout=5,
                                where=lambda e: e["macs"] == [mac1])
        assert arp.node == 1
        lost = timeline.wait_for("probe.icmp", ip=IP1, ok=False, after=move, timeout=5)
        # our probes' answers must not have taught the client the new MAC
        assert pr.view()[IP1]["neigh"] == mac0
        garp = timeline.note("gratuitous ARP from node 1")
        n1.run(["arping", "-U", "-c", "1", "-I", "eth1", IP1], check=False)
        timeline.wait_for("probe.garp", ip=IP1, node=1, after=garp, timeout=5)
        timeline.wait_for("probe.neigh", ip=IP1, mac=mac1, after=garp, timeout=5)
        back = timeline.wait_for("probe.icmp", ip=IP1, ok=True, after=garp, timeout=5)
        assert back.node == 1 and back["last_prev_t"] is not None
        out = outages(timeline, IP1, since=move)
        assert len(out) == 1 and out[0].start == lost and out[0].end == back
        assert 0 < out[0].lo <= out[0].duration <= out[0].hi < 10
        # ARP saw at most the few ms between delete and add: the new holder answers at once
        assert all(o.duration is not None and o.duration < 0.5
                   for o in outages(timeline, IP1, kind="probe.arp", since=move))
    assert not pr.running()
    stop = timeline.first("probe.stop")
    assert stop["rounds"] > 10 and stop["answered"] > 0


def test_prober_stops_by_itself_and_refuses_foreign_addresses(cluster, timeline):
    with pytest.raises(ValueError, match="refusing"):
        ClientProber(cluster, timeline, ips=["192.0.2.2"])
    with pytest.raises(ValueError, match="refusing"):
        ClientProber(cluster, timeline, ips=["198.18.0.1"])  # the private network
    pr = ClientProber(cluster, timeline, period=0.02, max_rounds=5).start()
    pr.join(5)
    assert not pr.running()
    assert timeline.first("probe.stop")["rounds"] == 5
    # three IPs nobody holds: never answered
    assert {e["ip"] for e in timeline.events("probe.icmp", ok=False)} == {
        "203.0.113.201", "203.0.113.202", "203.0.113.203"}


# -- overhead ---------------------------------------------------------------------------

def _flap_fast(node, ifname: str, toggles: int) -> float:
    """Toggle a link's admin state as fast as one netlink socket can; returns seconds."""
    def body(r):
        idx = r.link_lookup(ifname=ifname)[0]
        t0 = time.monotonic()
        for i in range(toggles):
            r.link("set", index=idx, state="down" if i % 2 == 0 else "up")
        return time.monotonic() - t0
    return node.netlink(body)


@retry(stop=stop_after_delay(20), wait=wait_fixed(0.05), reraise=True)
def _wait_count(tl: Timeline, n: int, **kw) -> None:
    assert len(tl.events(**kw)) >= n


@retry(stop=stop_after_delay(20), wait=wait_fixed(0.05), reraise=True)
def _wait_last_up(tl: Timeline, kind: str, **kw) -> None:
    last = tl.last(kind, **kw)
    assert last is not None and last["up"] is True


@pytest.mark.cluster(nodes=5)
def test_recorder_overhead_on_five_nodes(cluster, standin, timeline, capsys):
    """CPU of every recorder idling on a 5-node cluster, then the rate it ingests
    a veth flapped as fast as one netlink socket allows (printed for the notes)."""
    idle_s = 2.0
    rec = Recorder(cluster, timeline, standin, poll_interval=0.1, switch=True, probe=True,
                   probe_period=0.02)
    with rec:
        t_idle = time.monotonic()
        cpu0 = time.process_time()
        with pytest.raises(TimelineTimeout):  # the main thread just waits: all CPU is ours
            timeline.wait_for("never", after=t_idle, timeout=idle_s)
        idle_cpu = time.process_time() - cpu0
        idle_wall = time.monotonic() - t_idle
        before = {s.name: s.messages for s in rec.stats()}
        cpu1 = time.process_time()
        toggles = 2000
        flap_s = _flap_fast(cluster.nodes[0], "eth1", toggles)
        _wait_count(timeline, toggles, kind="link.admin", node=0)
        # the peer's carrier goes through the kernel's linkwatch, which merges
        # quick changes: wait for its last state (up), not for one event a toggle
        _wait_last_up(timeline, "link.carrier", node=None, ns="sw", ifname="n0-eth1")
        flap_cpu = time.process_time() - cpu1
        t_last = timeline.last("link.*", since=t_idle).t
    admin = timeline.events("link.admin", node=0)
    flap_events = timeline.events("link.*", since=admin[0].t)
    nl = [s for s in rec.stats() if s.name in ("netlink:n0", "netlink:sw")]
    msgs = sum(s.messages - before[s.name] for s in nl)
    report = (
        f"\nrecorder overhead, 5 nodes + client + switch, status poll 100 ms "
        f"(stand-in ctl), prober 20 ms x 3 IPs, 5 log followers:\n"
        f"  idle: {idle_cpu:.3f} s CPU in {idle_wall:.2f} s = "
        f"{100 * idle_cpu / idle_wall:.1f}% of one core\n"
        f"  flap: {toggles} admin toggles of n0 eth1 in {flap_s:.2f} s -> "
        f"{len(flap_events)} events ({msgs} netlink messages) recorded by "
        f"{t_last - admin[0].t:.2f} s = {len(flap_events) / (t_last - admin[0].t):.0f} "
        f"events/s, process CPU {flap_cpu:.2f} s (flapper included); "
        f"overruns {sum(s.overruns for s in nl)}\n" + rec.summary()
    )
    with capsys.disabled():
        print(report)
    assert len(admin) == toggles and not any(s.overruns for s in nl)
    assert not any(s.errors for s in rec.stats())
    assert idle_cpu < 0.3 * idle_wall


def test_event_is_a_plain_record():
    e = Event(1.0, "probe", "probe.icmp", None, {"ok": True})
    assert e["ok"] and e.get("missing", 3) == 3
    assert "ok=True" in e.describe()


def test_fast_decoder_agrees_with_pyroute2(cluster):
    """The listener's own rtnetlink decoder reads what pyroute2 reads."""
    from pyroute2 import IPRSocket
    from pyroute2.netlink import rtnl
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl

    from harness.rtnl import decode_events, link_view

    def body(r):
        s = IPRSocket()
        try:
            s.bind(groups=rtnl.RTMGRP_LINK | rtnl.RTMGRP_IPV4_IFADDR)
            idx = r.link_lookup(ifname="eth1")[0]
            r.link("set", index=idx, state="down")
            r.addr("add", index=idx, address=IP1, prefixlen=24)
            r.addr("del", index=idx, address=IP1, prefixlen=24)
            r.link("set", index=idx, state="up")
            got = []
            while True:
                try:
                    got.append(s.socket.recv(1 << 16, __import__("socket").MSG_DONTWAIT))
                except BlockingIOError:
                    return got
        finally:
            s.close()

    datagrams = cluster.nodes[0].netlink(body)
    kinds = set()
    for data in datagrams:
        ours = decode_events(data)
        theirs = list(MarshalRtnl().parse(data))
        assert len(ours) == len(theirs)
        for o, m in zip(ours, theirs, strict=True):
            kinds.add(o[0])
            if o[0] == "link":
                assert o[1] == m["index"] and o[2] == link_view(m)
            else:
                assert (o[1], o[2], o[3]) == (m["index"], m.get_attr("IFA_ADDRESS"),
                                              m["prefixlen"])
    assert kinds == {"link", "addr", "deladdr"}


def test_raw_rtnetlink_agrees_with_pyroute2(cluster):
    """The failover daemon's own rtnetlink (harness.rtnl.RawRtnl), in a node's
    namespace: its dumps read what pyroute2's read, the address it adds is the
    one pyroute2's `addr add` makes (local, address, broadcast), it sets a link
    up, and the kernel's refusals come back as OSError with the errno."""
    import errno
    import socket

    import pytest

    from harness.rtnl import RawRtnl, link_view

    def addrs(r):
        return sorted((a["index"], a.get_attr("IFA_ADDRESS"), a.get_attr("IFA_LOCAL"),
                       a.get_attr("IFA_BROADCAST"), a["prefixlen"])
                      for a in r.addr("dump", family=socket.AF_INET))

    def body(r):
        idx = r.link_lookup(ifname="eth1")[0]
        raw = RawRtnl()
        try:
            raw.add_ipv4(idx, IP1, 24, "203.0.113.255")
            dumps = (raw.links(), sorted(raw.ipv4()))
            theirs = ({m["index"]: link_view(m) for m in r.link("dump")},
                      sorted((a["index"], a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                             for a in r.addr("dump", family=socket.AF_INET)))
            ours_added = addrs(r)
            with pytest.raises(OSError) as twice:
                raw.add_ipv4(idx, IP1, 24, "203.0.113.255")
            raw.del_ipv4(idx, IP1, 24)
            with pytest.raises(OSError) as gone:
                raw.del_ipv4(idx, IP1, 24)
            r.addr("add", index=idx, address=IP1, prefixlen=24, broadcast="203.0.113.255")
            pyroute2_added = addrs(r)
            r.addr("del", index=idx, address=IP1, prefixlen=24)
            r.link("set", index=idx, state="down")
            raw.set_up(idx)
            up = bool(r.link("get", index=idx)[0]["flags"] & 1)
        finally:
            raw.close()
        return dumps, theirs, ours_added, pyroute2_added, twice.value, gone.value, up

    dumps, theirs, ours_added, pyroute2_added, twice, gone, up = cluster.nodes[0].netlink(body)
    assert dumps == theirs
    assert len(dumps[0]) >= 3 and any(ip == IP1 for _, ip, _ in dumps[1])
    assert ours_added == pyroute2_added and any(a[1] == IP1 for a in ours_added)
    assert twice.errno == errno.EEXIST and gone.errno == errno.EADDRNOTAVAIL
    assert up
