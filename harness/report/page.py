"""The report as ONE self-contained HTML file: inline CSS, the charts as
inline SVG, the event table and a few lines of inline JavaScript that
filter it by node, kind and text. Nothing is fetched when it is opened, so
it works as a CI artifact and offline."""

from __future__ import annotations

import html
import json
from pathlib import Path

from harness.report import charts, topology_view
from harness.report.model import Delay, ReportData

MAX_ROWS = 20000  # about 2 MB of table; a longer run's events are in its trace and JSONL

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f5f5f5} .bad{color:#b71c1c;font-weight:bold} .ok{color:#1b5e20}
#events td{font:12px monospace;white-space:pre-wrap} #events td:first-child{text-align:right}
.chart svg{max-width:100%;height:auto} .legend span{display:inline-block;padding:0 6px;
margin:2px;border-radius:3px;font-size:12px} .meta td:first-child{font-weight:bold}
"""

SCRIPT = """
(function(){
  var rows = Array.prototype.slice.call(document.querySelectorAll('#events tbody tr'));
  var node = document.getElementById('f-node'), kind = document.getElementById('f-kind');
  var text = document.getElementById('f-text'), count = document.getElementById('f-count');
  function apply(){
    var n = node.value, k = kind.value, t = text.value.toLowerCase(), shown = 0;
    rows.forEach(function(r){
      var ok = (!n || r.dataset.node === n) && (!k || r.dataset.kind === k)
               && (!t || r.textContent.toLowerCase().indexOf(t) >= 0);
      r.style.display = ok ? '' : 'none'; if (ok) shown++;
    });
    count.textContent = shown + ' of ' + rows.length + ' events';
  }
  [node, kind, text].forEach(function(el){
    el.addEventListener('input', apply); el.addEventListener('change', apply);
  });
  apply();
})();
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _delay_row(d: Delay, bound_from: str) -> str:
    secs = "-" if d.seconds is None else f"{d.seconds:.3f} s"
    bound = "-" if d.bound is None else f"{d.bound:.2f} s"
    verdict = {True: '<td class="ok">within</td>', False: '<td class="bad">OVER</td>',
               None: "<td>-</td>"}[d.within]
    return (f"<tr><td>{_e(d.fault)}</td><td>{_e(d.what)}</td><td>{secs}</td><td>{bound}</td>"
            f"{verdict}<td>{_e(bound_from)}</td></tr>")


def _bound_from(data: ReportData, d: Delay) -> str:
    b = data.info.bounds()
    what = d.what
    if d.asserted:
        return "asserted by the test"
    if what.startswith("fault"):
        return f"longest monitor gap max(5, MonitorInterval={b.monitor_interval:g}) + slack " \
               f"{b.slack:g}"
    if what.startswith("UNHEALTHY"):
        return f"RecoverInterval={b.recover_interval:g} + slack {b.slack:g}"
    return "detection + takeover bounds"


def _legend() -> str:
    items = list(charts.FLAG_COLOURS.items())
    items += [(f"link {k}", v) for k, v in charts.LINK_COLOURS.items()]
    items += [("client outage", charts.OUTAGE), ("fault", charts.FAULT),
              ("IP on two nodes", "#000000")]
    dark = ("#212121", "#000000", "#d50000")
    spans = [f'<span style="background:{c};color:{"#fff" if c in dark else "#000"}">'
             f"{_e(k)}</span>" for k, c in items]
    return "".join(spans) + (' <span style="border:1px solid #d50000">hatched: the ctdb view '
                             "differs from the kernel</span> <span>| a monitor run</span>")


def render(data: ReportData, chart: str | None = None) -> str:
    """The whole page as a string (`chart`: the swimlane SVG, if drawn already)."""
    info = data.info
    tun = ", ".join(f"{k}={v}" for k, v in sorted(info.tunables.items())) or "CTDB's defaults"
    delays = "".join(_delay_row(d, _bound_from(data, d)) for d in data.delays) or \
        '<tr><td colspan="6">no fault on a node in this run</td></tr>'
    nodes = sorted({r.node for r in data.rows}, key=lambda s: (len(s), s))
    kinds = sorted({r.kind for r in data.rows})
    opts = lambda xs: "".join(f'<option value="{_e(x)}">{_e(x)}</option>' for x in xs)  # noqa: E731
    rows = "".join(
        f'<tr data-node="{_e(r.node)}" data-kind="{_e(r.kind)}"><td>{r.t:.3f}</td>'
        f"<td>{_e(r.node)}</td><td>{_e(r.source)}</td><td>{_e(r.kind)}</td>"
        f"<td>{_e(r.text)}</td></tr>" for r in data.rows[:MAX_ROWS])
    cut = "" if len(data.rows) <= MAX_ROWS else (
        f"<p><b>{len(data.rows) - MAX_ROWS} later events left out</b> to keep the page small; "
        "timeline.jsonl and the trace hold them all.</p>")
    topo = topology_view.draw(info.topology) if info.topology is not None else \
        "<p>(the topology was not saved with this timeline)</p>"
    lanes = json.dumps([lane.name for lane in data.lanes])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(info.title)}</title>
<style>{CSS}</style></head><body>
<h1>{_e(info.title)}</h1>
<table class="meta">
<tr><td>implementation</td><td>{_e(info.implementation)}</td></tr>
<tr><td>verdict</td><td id="verdict">{_e(info.verdict or "-")}</td></tr>
<tr><td>tunables in force</td><td>{_e(tun)}</td></tr>
<tr><td>length</td><td>{data.duration:.1f} s, {len(data.rows)} events, {len(data.lanes)} lanes
</td></tr></table>
<h2>Measured delays</h2>
<table id="delays"><thead><tr><th>fault</th><th>delay</th><th>measured</th><th>bound</th>
<th></th><th>bound from</th></tr></thead><tbody>{delays}</tbody></table>
<h2>Timeline</h2>
<div class="legend">{_legend()}</div>
<div class="chart" id="chart" data-lanes="{_e(lanes)}">{chart or charts.swimlanes(data)}</div>
<h2>Topology</h2>
<div class="chart" id="topology">{topo}</div>
<h2>Events and log lines</h2>
<p>node <select id="f-node"><option value="">all</option>{opts(nodes)}</select>
kind <select id="f-kind"><option value="">all</option>{opts(kinds)}</select>
text <input id="f-text" type="search"> <span id="f-count"></span>
<br><small>times in seconds since the run started</small></p>
<table id="events"><thead><tr><th>s</th><th>node</th><th>source</th><th>kind</th>
<th>data</th></tr></thead><tbody>{rows}</tbody></table>{cut}
<script>{SCRIPT}</script>
</body></html>
"""


def write(data: ReportData, path: Path) -> Path:
    """PATH (the page) and PATH's stem + .chart.svg (the swimlanes alone, for
    pytest-html and anything else that wants just the picture)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chart = charts.swimlanes(data)
    path.with_suffix(".chart.svg").write_text(chart)
    path.write_text(render(data, chart))
    return path
