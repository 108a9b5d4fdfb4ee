"""A run's timeline as a picture: one self-contained HTML page and a Chrome
trace, for failed tests, the seed test, `harness demo`, `harness stats`,
scenario runs and labs.

    from harness.report import RunInfo, write_report
    paths = write_report(timeline, RunInfo("my run", "native", {"MonitorInterval": 3},
                                           topology), out_dir)

The modules, one job each:

  model          the page's data from the timeline (lanes, faults, delays, rows)
  charts         swimlane and distribution charts (matplotlib -> inline SVG)
  topology_view  the cluster drawn (matplotlib -> inline SVG)
  page           the HTML page: tables, charts, the filter script
  trace          Chrome trace-event JSON (Perfetto, chrome://tracing)
  runinfo        run.json beside timeline.jsonl: implementation, tunables, topology
  command        `harness report TIMELINE.jsonl`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.record import Timeline
from harness.report.model import Delay, ReportData, RunInfo, build
from harness.report.runinfo import save_info


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    trace: Path
    data: ReportData


def write_report(timeline: Timeline, info: RunInfo, directory: Path | str,
                 name: str = "report") -> ReportFiles:
    """Write NAME.html and NAME.trace.json (and run.json, so `harness report`
    can rebuild them from timeline.jsonl later) into `directory`."""
    from harness.report import page, trace  # matplotlib: imported only when drawing

    d = Path(directory)
    data = build(timeline, info)
    save_info(info, d / "run.json")
    return ReportFiles(page.write(data, d / f"{name}.html"),
                       trace.write(data, d / f"{name}.trace.json"), data)


__all__ = ["Delay", "ReportData", "ReportFiles", "RunInfo", "build", "write_report"]
