"""`harness save`: a lab's evidence in one directory, and what each fault did.

    DIR/timeline.jsonl, timeline.txt  the journal, and as a table
    DIR/logs/node<N>.log              every daemon's log; supervisor.log
    DIR/config/node<N>/...            the files each daemon was configured with
    DIR/lab.json                      the lab's spec (topology, tunables, ...)
    DIR/summary.json                  per fault, from the timeline:

  detection_s      fault -> the target node first reported UNHEALTHY
  takeover_s       UNHEALTHY -> the last of the IPs the node held (kernel view,
                   at the fault) added on another node; negative when the
                   status poll saw the flag after the IP had moved
  moved_s          per such IP: fault -> added on another node
  client_outage_s  per IP: the client's ICMP outage that began after the fault
                   (first unanswered to first answered probe); `outage_open`
                   lists those still unanswered when the timeline ends

null where it did not happen (or the fault has no single target node). A
fault's effects are looked for from its apply until the next fault on the
same node (any next fault, for faults without one); the cycles of a flap
belong to the flap.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.labs.journal import Event, Timeline, address_holders, load_timeline, outages
from harness.labs.state import LabFiles, LabSpec, LabUnavailable
from harness.report import RunInfo, write_report


@dataclass
class FaultReport:
    """What one fault did, in seconds (times relative to the lab's start)."""

    id: str
    fault: str
    desc: str
    node: int | None
    applied_at_s: float
    undone_at_s: float | None
    detection_s: float | None = None
    detected_flags: str | None = None
    takeover_s: float | None = None
    ips: list[str] = field(default_factory=list)
    moved_s: dict[str, float | None] = field(default_factory=dict)
    client_outage_s: dict[str, float | None] = field(default_factory=dict)
    outage_open: list[str] = field(default_factory=list)


def _r(x: float) -> float:
    return round(x, 3)


def fault_reports(tl: Timeline, public_ips: list[str]) -> list[FaultReport]:
    """One report per fault made through the lab, in the order they acted."""
    applies = tl.events("fault.apply")
    inner = {str(e.data.get("inner")) for e in applies if e.data.get("fault") == "Flap"}
    firsts: dict[str, Event] = {}
    for e in applies:
        fid = str(e.data.get("id"))
        if fid not in inner:
            firsts.setdefault(fid, e)
    undos = {str(e.data.get("id")): e for e in tl.events("fault.undo")}
    order = sorted(firsts.values(), key=lambda e: e.t)
    end = tl.events()[-1].t if len(tl) else tl.t0
    out = []
    for i, ev in enumerate(order):
        later = [e for e in order[i + 1:] if ev.node is None or e.node in (ev.node, None)]
        until = later[0].t if later else end
        undo = undos.get(str(ev.data.get("id")))
        out.append(_report(tl, ev, undo, until, public_ips))
    return out


def _report(tl: Timeline, ev: Event, undo: Event | None, until: float,
            public_ips: list[str]) -> FaultReport:
    pnn = ev.node
    rep = FaultReport(id=str(ev.data.get("id")), fault=str(ev.data.get("fault")),
                      desc=str(ev.data.get("desc")), node=pnn,
                      applied_at_s=_r(ev.t - tl.t0),
                      undone_at_s=_r(undo.t - tl.t0) if undo is not None else None)
    held = address_holders(tl, at=ev.t, ips=public_ips)
    rep.ips = sorted(ip for ip, where in held.items() if pnn is not None and f"n{pnn}" in where)
    bad = None
    if pnn is not None:
        bad = tl.first("flags", after=ev, node=pnn, until=until,
                       where=lambda e: "UNHEALTHY" in e.data.get("flags", ()))
        if bad is not None:
            rep.detection_s = _r(bad.t - ev.t)
            rep.detected_flags = "|".join(bad.data.get("flags", ()))
        adds: dict[str, Event | None] = {
            ip: tl.first("addr.add", after=ev, until=until, ip=ip,
                         where=lambda e: str(e.data.get("ns", "")).startswith("n")
                         and e.data.get("ns") != f"n{pnn}")
            for ip in rep.ips}
        rep.moved_s = {ip: (_r(a.t - ev.t) if a is not None else None) for ip, a in adds.items()}
        moved = [a for a in adds.values() if a is not None]
        if bad is not None and moved and len(moved) == len(adds):
            rep.takeover_s = _r(max(a.t for a in moved) - bad.t)
    for ip in rep.ips or (public_ips if pnn is None else []):
        began = [o for o in outages(tl, ip, since=ev.t) if ev.t <= o.start.t <= until]
        if not began:
            rep.client_outage_s[ip] = None
        elif began[0].duration is None:
            rep.client_outage_s[ip] = None
            rep.outage_open.append(ip)
        else:
            rep.client_outage_s[ip] = _r(began[0].duration or 0.0)
    return rep


def summary(spec: LabSpec, tl: Timeline, poll_interval: float) -> dict[str, Any]:
    return {
        "lab": spec.name, "run": spec.run_id, "implementation": spec.implementation,
        "nodes": spec.topology["nodes"], "tunables": spec.tunables,
        "script_options": spec.script_options, "event_mode": spec.event_mode,
        "status_poll_s": poll_interval,  # how late a flag can be seen (detection_s)
        "events": len(tl), "faults": [asdict(r) for r in fault_reports(tl, spec.public_ips())],
    }


def save(files: LabFiles, directory: Path) -> dict[str, Any]:
    """Write the lab's evidence under `directory` (see the module doc); returns
    the summary. Works on a dead lab too, until it is removed."""
    spec = files.spec()
    if not files.journal_path.exists():
        raise LabUnavailable(f"lab {spec.name} has no timeline yet; is it still starting?")
    directory.mkdir(parents=True, exist_ok=True)
    tl = load_timeline(files.journal_path)
    tl.save(directory, "timeline")
    write_report(tl, RunInfo(f"lab {spec.name}", spec.implementation, dict(spec.tunables),
                             spec.build_topology(), "lab saved while running"), directory)
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    if files.log_path.exists():
        shutil.copy(files.log_path, logs / "supervisor.log")
    access = files.access()
    for node in access.nodes:
        if Path(node.log).exists():
            shutil.copy(node.log, logs / f"node{node.pnn}.log")
        conf = directory / "config" / f"node{node.pnn}"
        conf.mkdir(parents=True, exist_ok=True)
        for path in map(Path, node.config):
            if path.exists():
                shutil.copy(path, conf / path.name)
    shutil.copy(files.spec_path, directory / "lab.json")
    result = summary(spec, tl, access.poll_interval)
    (directory / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    return result
