"""The timeline as Chrome trace-event JSON (opens in Perfetto's UI and in
chrome://tracing): one process per group (nodes, public IPs, links,
client), one thread (track) per lane, spans as complete ("X") events, monitor
runs, faults and log lines as instant ("i") events, in microseconds, so a
long run can be zoomed to the millisecond. Format:
https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.model import ReportData

GROUPS = {"node": (1, "nodes"), "ip": (2, "public IPs (kernel)"), "link": (3, "links"),
          "bond": (3, "links"), "client": (4, "client outages")}
FAULTS_PID, LOG_PID = 5, 6


def _us(s: float) -> int:
    return int(round(s * 1e6))


def _node_tid(node: str) -> int:
    """Trace viewers want numeric thread ids: 0 for no node, pnn + 1 for nodes."""
    return int(node[1:]) + 1 if node[1:].isdigit() else 0


def events(data: ReportData) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    named: set[int] = set()
    for tid, lane in enumerate(data.lanes, start=1):
        pid, pname = GROUPS.get(lane.group, (9, lane.group))
        if pid not in named:
            out.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": pname}})
            named.add(pid)
        out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                    "args": {"name": lane.name}})
        out.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                    "args": {"sort_index": tid}})
        for s in lane.spans:
            out.append({"ph": "X", "name": s.label, "cat": lane.group, "pid": pid, "tid": tid,
                        "ts": _us(s.start), "dur": max(1, _us(s.duration))})
        for m in lane.marks:
            out.append({"ph": "X", "name": m.label, "cat": "disagreement", "pid": pid,
                        "tid": tid, "ts": _us(m.start), "dur": max(1, _us(m.duration))})
        for t in lane.ticks:
            out.append({"ph": "i", "s": "t", "name": "monitor run", "cat": "monitor",
                        "pid": pid, "tid": tid, "ts": _us(t)})
    out.append({"ph": "M", "name": "process_name", "pid": FAULTS_PID, "args": {"name": "faults"}})
    for k, f in enumerate(data.faults):
        out.append({"ph": "X", "name": f.label, "cat": "fault", "pid": FAULTS_PID, "tid": k,
                    "ts": _us(f.start), "dur": max(1, _us(f.duration))})
    out.append({"ph": "M", "name": "process_name", "pid": LOG_PID,
                "args": {"name": "events and logs"}})
    for r in data.rows:
        out.append({"ph": "i", "s": "t", "name": r.kind, "cat": r.source, "pid": LOG_PID,
                    "tid": _node_tid(r.node), "ts": _us(r.t),
                    "args": {"node": r.node, "text": r.text}})
    return out


def write(data: ReportData, path: Path) -> Path:
    """Write the trace; `displayTimeUnit` ms is what the viewers show by default."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"traceEvents": events(data), "displayTimeUnit": "ms",
                                "otherData": {"title": data.info.title,
                                              "implementation": data.info.implementation,
                                              "tunables": data.info.tunables}}))
    return path
