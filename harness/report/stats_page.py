"""`harness stats`' report: per implementation the distributions of
detection, takeover and client outage (histogram and empirical CDF, drawn
by harness.report.charts) with the seed's theory on the detection CDF, and
the summary table, as one self-contained HTML page."""

from __future__ import annotations

import html
from pathlib import Path

from harness.report import charts
from harness.report.page import CSS


def write(path: Path, title: str, samples: dict[str, dict[str, list[float]]],
          gap: float | None, table: str) -> Path:
    """samples: implementation -> measure (detection, takeover, outage) -> seconds;
    gap: the steady monitor gap the theory assumes (None: event-driven, no theory);
    table: the text summary `harness stats` printed."""
    theory = (f"The seed's theory: the fault lands uniformly within a monitor gap of "
              f"{gap:g} s, so detection is uniform over [0, {gap:g}] s (dashed line)."
              if gap else "Event-driven monitor: no monitor gap, so no theoretical curve.")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(theory)}</p>
<pre id="summary">{html.escape(table)}</pre>
<div class="chart" id="chart">{charts.distributions(samples, gap)}</div>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
