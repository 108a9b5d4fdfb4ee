"""The lab commands' parts that need no cluster: a lab's files and names, the
supervisor's socket protocol, NODE specs, watch's lines and save's summary."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from harness.cmdline import UsageError
from harness.faults import FaultSpecError
from harness.labs import access
from harness.labs.control import ControlServer, LabUnreachable, Reply, Request, call
from harness.labs.journal import Event, Journal, Timeline, load_timeline
from harness.labs.lifecycle import parse_script_option, parse_tunable
from harness.labs.report import fault_reports
from harness.labs.state import (
    LabAccess,
    LabError,
    LabFiles,
    LabSpec,
    NodeAccess,
    all_labs,
    create_lab,
    find_lab,
)
from harness.labs.supervisor import check_fault
from harness.labs.watch import Lines
from harness.topology import default_topology, topology_to_dict

IPS = ["203.0.113.201", "203.0.113.202", "203.0.113.203"]


# -- state ---------------------------------------------------------------------------

def _spec(rid: str, name: str = "") -> LabSpec:
    return LabSpec(name=name, run_id=rid, implementation="native",
                   topology=topology_to_dict(default_topology()))


def test_labs_are_named_in_turn_and_found_by_name(tmp_path: Path):
    for rid in ("aaaaaa", "bbbbbb", "cccccc"):
        (tmp_path / rid).mkdir()
    (tmp_path / "dddddd").mkdir()  # a run that is no lab
    first = create_lab(_spec("aaaaaa"), tmp_path)
    second = create_lab(_spec("bbbbbb"), tmp_path)
    named = create_lab(_spec("cccccc", "bug-4711"), tmp_path)
    assert (first.name, second.name, named.name) == ("lab1", "lab2", "bug-4711")
    assert [f.name for f in all_labs(tmp_path)] == ["bug-4711", "lab1", "lab2"]
    assert find_lab("lab2", tmp_path).run_id == "bbbbbb"
    assert find_lab("lab2", tmp_path).spec().build_topology() == default_topology()


def test_taken_bad_and_unknown_names_say_how_to_fix(tmp_path: Path):
    (tmp_path / "aaaaaa").mkdir()
    (tmp_path / "bbbbbb").mkdir()
    create_lab(_spec("aaaaaa", "x"), tmp_path)
    with pytest.raises(LabError, match="a lab of that name exists; .*harness down x"):
        create_lab(_spec("bbbbbb", "x"), tmp_path)
    with pytest.raises(LabError, match="use letters, digits"):
        create_lab(_spec("bbbbbb", "no spaces"), tmp_path)
    with pytest.raises(LabError, match=r"no lab named 'y' \(labs: x\); `harness ls`"):
        find_lab("y", tmp_path)


def test_access_round_trips_through_its_file(tmp_path: Path):
    (tmp_path / "aaaaaa").mkdir()
    files = create_lab(_spec("aaaaaa"), tmp_path)
    acc = _access()
    files.write_access(acc)
    assert LabFiles("aaaaaa", tmp_path).access() == acc


# -- NODE specs ------------------------------------------------------------------------

def _access(clients: tuple[str, ...] = ("public",)) -> LabAccess:
    nodes = [NodeAccess(pnn=p, address=f"198.18.0.{p + 1}", netns=f"fth-abc-n{p}",
                        daemon_pid=None, daemon_start=None, enter=None, cli=None,
                        log=f"/x/node{p}.log", config=[]) for p in range(3)]
    return LabAccess(nodes=nodes, clients={c: f"fth-abc-c-{c}" for c in clients},
                     switch="fth-abc-sw", t0=1.0, ready_at=2.0, poll_interval=0.1)


def test_node_specs_name_nodes_clients_and_the_switch():
    acc = _access(("public", "public2"))
    assert access.target(acc, "switch", "l").prefix[-1] == "fth-abc-sw"
    assert access.target(acc, "client:public2", "l").prefix[-1] == "fth-abc-c-public2"
    t = access.target(acc, "1", "l")  # no daemon: the node's namespace only, said so
    assert t.prefix[-1] == "fth-abc-n1" and "not running" in t.note
    assert [n.pnn for n in access.nodes_spec(acc, "all", "l")] == [0, 1, 2]
    assert [n.pnn for n in access.nodes_spec(acc, "2,0-1", "l")] == [2, 0, 1]
    with pytest.raises(LabError, match="several clients"):
        access.target(acc, "client", "l")
    with pytest.raises(LabError, match="no client on network 'x'"):
        access.target(acc, "client:x", "l")
    with pytest.raises(LabError, match=r"no node '3'; nodes are 0-2"):
        access.nodes_spec(acc, "0,3", "l")
    with pytest.raises(LabError, match=r"no node 'n1'"):
        access.target(acc, "n1", "l")


# -- argument parsing --------------------------------------------------------------------

def test_tunables_take_ctdbs_spelling_and_refuse_what_ctdbd_would():
    assert parse_tunable("monitorinterval=0x10") == ("MonitorInterval", 16)
    for bad, why in (("MonitorInterval", "write NAME=VALUE"), ("Nope=1", "No such tunable"),
                     ("MonitorInterval=-1", "Invalid value")):
        with pytest.raises(UsageError, match=why):
            parse_tunable(bad)
    assert parse_script_option("CTDB_PARTIALLY_ONLINE_INTERFACES=yes") == (
        "CTDB_PARTIALLY_ONLINE_INTERFACES", "yes")
    with pytest.raises(UsageError, match="shell variable"):
        parse_script_option("1X=y")


def test_fault_arguments_are_checked_against_the_labs_nodes():
    check_fault("pull-cable", ["2", "eth1"], 3)
    check_fault("partition", ["0,1/2"], 3)
    with pytest.raises(FaultSpecError, match=r"no node 3 in this lab \(nodes 0-2\)"):
        check_fault("partition", ["0/3"], 3)
    with pytest.raises(FaultSpecError, match="unknown fault"):
        check_fault("unplug", [], 3)
    with pytest.raises(FaultSpecError, match="missing PORT"):
        check_fault("pull-cable", ["2"], 3)


# -- the control socket ---------------------------------------------------------------------

def test_control_socket_answers_each_request_and_flags_bad_ones(tmp_path: Path):
    seen: list[Request] = []

    def handle(req: Request) -> Reply:
        seen.append(req)
        if req.op == "boom":
            raise RuntimeError("it broke")
        return Reply(True, {"echo": req.args})

    path = tmp_path / "c.sock"
    server = ControlServer(path, handle).start()
    try:
        assert path.stat().st_mode & 0o777 == 0o600
        assert call(path, "fault", kind="kill", params=["1"]).data == {
            "echo": {"kind": "kill", "params": ["1"]}}
        broken = call(path, "boom")
        assert not broken.ok and not broken.usage and "it broke" in broken.error
        assert [r.op for r in seen] == ["fault", "boom"]
    finally:
        server.close()
    assert not path.exists()
    with pytest.raises(LabUnreachable, match="no supervisor listens"):
        call(path, "ping")


# -- watch's lines -------------------------------------------------------------------------

def _ev(t: float, source: str, kind: str, node: int | None = None, **data: object) -> Event:
    return Event(t, source, kind, node, dict(data))


def test_watch_lines_show_changes_once_with_both_clocks():
    lines = Lines(100.0, IPS)
    out = []
    for e in [
        _ev(100.5, "netlink", "addr.add", 2, ns="n2", ip="198.18.0.3", ifname="eth0"),
        _ev(100.5, "netlink", "addr.add", 2, ns="n2", ip=IPS[1], ifname="eth1", initial=True),
        _ev(101.0, "status", "flags", 2, flags=["OK"], prev=None, by=0, initial=True),
        _ev(101.0, "status", "flags", 2, flags=["OK"], prev=None, by=1, initial=True),
        _ev(110.0, "fault", "fault.apply", 2, id="f1", desc="node 2 cable eth1 pulled"),
        _ev(110.001, "netlink", "link.carrier", 2, ns="n2", ifname="eth1", up=False),
        _ev(110.03, "probe", "probe.icmp", None, ip=IPS[1], ok=False),
        _ev(112.0, "status", "flags", 2, flags=["UNHEALTHY"], prev=["OK"], by=1),
        _ev(112.1, "status", "flags", 2, flags=["UNHEALTHY"], prev=["OK"], by=0),
        _ev(112.2, "netlink", "addr.add", 0, ns="n0", ip=IPS[1], ifname="eth1"),
        _ev(112.25, "probe", "probe.icmp", 0, ip=IPS[1], ok=True),
        _ev(112.3, "log", "log", 0, line="takeover run"),
    ]:
        out += [lines.format(i) for i in lines.feed(e)]
    assert out == [
        "    +0.500s  -            node 2   + 203.0.113.202 on eth1 (initial)",
        "    +1.000s  -            node 2   flags OK (seen by node 0, initial)",
        "   +10.000s  f1+0.000s    node 2   FAULT f1: node 2 cable eth1 pulled",
        "   +10.001s  f1+0.001s    node 2   eth1 carrier down",
        "   +10.030s  f1+0.030s    client   outage 203.0.113.202 begins",
        "   +12.000s  f1+2.000s    node 2   flags OK -> UNHEALTHY (seen by node 1)",
        "   +12.200s  f1+2.200s    node 0   + 203.0.113.202 on eth1",
        "   +12.250s  f1+2.250s    client   outage 203.0.113.202 over after 2.220 s "
        "(node 0 answers)",
        "   +12.300s  f1+2.300s    node 0   takeover run",
    ]


# -- save's summary ------------------------------------------------------------------------

def _timeline() -> Timeline:
    tl = Timeline("lab", t0=100.0)
    for e in [
        _ev(100.5, "netlink", "addr.add", 2, ns="n2", ip=IPS[1], ifname="eth1", initial=True),
        _ev(100.5, "netlink", "addr.add", 1, ns="n1", ip=IPS[0], ifname="eth1", initial=True),
        _ev(100.6, "probe", "probe.icmp", 2, ip=IPS[1], ok=True),
        _ev(110.0, "fault", "fault.apply", 2, fault="PullCable", id="f1", desc="cable"),
        _ev(110.05, "probe", "probe.icmp", None, ip=IPS[1], ok=False),
        _ev(112.0, "status", "flags", 2, flags=["UNHEALTHY"], by=1),
        _ev(112.3, "netlink", "addr.add", 0, ns="n0", ip=IPS[1], ifname="eth1"),
        _ev(112.4, "probe", "probe.icmp", 0, ip=IPS[1], ok=True),
        _ev(120.0, "fault", "fault.undo", 2, fault="PullCable", id="f1", desc="cable"),
        _ev(130.0, "fault", "fault.apply", 1, fault="SignalDaemon", id="f2", desc="kill"),
        _ev(130.1, "probe", "probe.icmp", None, ip=IPS[0], ok=False),
    ]:
        tl.add(e)
    return tl


def test_summary_per_fault_detection_takeover_outage_or_null():
    f1, f2 = fault_reports(_timeline(), IPS)
    assert dataclasses.asdict(f1) == {
        "id": "f1", "fault": "PullCable", "desc": "cable", "node": 2, "applied_at_s": 10.0,
        "undone_at_s": 20.0, "detection_s": 2.0, "detected_flags": "UNHEALTHY",
        "takeover_s": 0.3, "ips": [IPS[1]], "moved_s": {IPS[1]: 2.3},
        "client_outage_s": {IPS[1]: 2.35}, "outage_open": []}
    # never detected, its IP never moved, the client still cut off at the end
    assert (f2.detection_s, f2.takeover_s, f2.moved_s) == (None, None, {IPS[0]: None})
    assert f2.client_outage_s == {IPS[0]: None} and f2.outage_open == [IPS[0]]


def test_journal_is_readable_while_and_after_it_is_written(tmp_path: Path):
    path = tmp_path / "timeline.jsonl"
    tl = Timeline("lab", t0=100.0)
    journal = Journal(path, tl)
    threads = [threading.Thread(target=lambda i=i: tl.mark("test", "note", text=str(i)))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(path, "a") as f:
        f.write('{"t": 1')  # a line still being written is not read
    loaded = load_timeline(path)
    journal.close()
    assert loaded.t0 == 100.0 and len(loaded) == 20
    assert sorted(int(e["text"]) for e in loaded) == list(range(20))
