"""The swimlane chart and the delay-distribution charts, drawn by matplotlib
as SVG text for embedding in the page.

Why matplotlib: it is the best-kept Python plotting library, draws offline
with its Agg/SVG backends (no browser, JavaScript runtime or network), and
its SVG keeps text as <text> elements (svg.fonttype "none"), so the page
stays small and a browser test can find every lane label in the DOM.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, ever
matplotlib.rcParams["svg.fonttype"] = "none"  # text stays <text>: small, searchable
matplotlib.rcParams["svg.hashsalt"] = "report"  # the same run gives the same SVG

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.report.model import Lane, ReportData  # noqa: E402

FLAG_COLOURS = {
    "OK": "#4caf50", "UNHEALTHY": "#ff9800", "DISCONNECTED": "#9e9e9e", "BANNED": "#212121",
    "DISABLED": "#2196f3", "PARTIALLYONLINE": "#cddc39", "STOPPED": "#9c27b0",
    "INACTIVE": "#795548",
}
LINK_COLOURS = {"up": "#8bc34a", "no carrier": "#e53935", "admin down": "#fb8c00"}
HOLDER_PALETTE = ("#3f51b5", "#009688", "#e91e63", "#ffc107", "#00bcd4", "#8bc34a",
                  "#673ab7", "#ff5722", "#607d8b", "#cddc39")
OUTAGE = "#d50000"
FAULT = "#ffcdd2"


def svg_text(fig: Figure) -> str:
    """The figure as an <svg> element: no XML prolog, DOCTYPE or RDF metadata
    (they carry URLs the page must not have, and nothing needs them)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def _colour(lane: Lane, label: str, holders: dict[str, str]) -> str:
    if lane.group == "node":
        return FLAG_COLOURS.get(label.split("+")[0], "#bdbdbd")
    if lane.group == "link":
        return LINK_COLOURS.get(label, "#bdbdbd")
    if lane.group == "client":
        return OUTAGE
    if label == "none":
        return "#eeeeee"
    if "+" in label and lane.group == "ip":
        return "#000000"  # on two nodes at once
    return holders.setdefault(label, HOLDER_PALETTE[len(holders) % len(HOLDER_PALETTE)])


def swimlanes(data: ReportData) -> str:
    """One row per lane over the run's time; faults as shaded, labelled spans
    across all rows; measured delays annotated where they ended."""
    lanes = data.lanes
    below = 0.55 * sum(1 for d in data.delays if d.at is not None)
    height = 1.2 + 0.32 * (len(lanes) + below)
    fig, ax = plt.subplots(figsize=(14, height))
    holders: dict[str, str] = {}
    rows = len(lanes)
    for f in data.faults:
        ax.axvspan(f.start, f.end, color=FAULT, alpha=0.6, zorder=0)
        ax.text(f.start, rows - 0.3, " " + f.label, fontsize=8, va="bottom", color="#b71c1c",
                clip_on=True)
    for i, lane in enumerate(lanes):
        y = rows - 1 - i
        for s in lane.spans:
            ax.broken_barh([(s.start, max(s.duration, 0.002))], (y - 0.35, 0.7),
                           color=_colour(lane, s.label, holders), zorder=2)
            if s.duration > data.duration / 25 and lane.group != "client":
                ax.text(s.start + s.duration / 2, y, s.label, ha="center", va="center",
                        fontsize=7, color="white" if lane.group in ("node", "ip") else "black",
                        zorder=3, clip_on=True)
        for m in lane.marks:
            ax.broken_barh([(m.start, max(m.duration, 0.002))], (y - 0.35, 0.7),
                           facecolor="none", edgecolor="#d50000", hatch="////", zorder=4)
        if lane.ticks:
            ax.plot(lane.ticks, [y + 0.42] * len(lane.ticks), marker="|", linestyle="none",
                    color="#000000", markersize=6, zorder=5)
    shown = [d for d in data.delays if d.at is not None and d.seconds is not None]
    for k, d in enumerate(shown):  # below the lanes, one line each so none overlap
        assert d.at is not None and d.seconds is not None
        ax.axvline(d.at, color="#b71c1c", linewidth=0.6, linestyle=":", zorder=1)
        ax.annotate(f"{d.what}: {d.seconds:.3f} s (bound {d.bound or 0:.2f} s)",
                    (d.at, -0.8 - 0.55 * k), fontsize=7, color="#b71c1c",
                    annotation_clip=False)
    ax.set_yticks(range(rows), [lane.name for lane in reversed(lanes)], fontsize=8)
    ax.set_ylim(-1 - below, rows + 0.4)
    ax.set_xlim(0, data.duration)
    ax.set_xlabel("seconds since the run started")
    ax.grid(axis="x", linewidth=0.3)
    fig.tight_layout()
    return svg_text(fig)


def distributions(samples: dict[str, dict[str, list[float]]], gap: float | None) -> str:
    """Per implementation and measure (detection, takeover, outage): a
    histogram and the empirical CDF; on the detection CDF the seed's theory
    (the fault lands uniformly within a monitor gap: CDF = t / gap)."""
    measures = ["detection", "takeover", "outage"]
    if any(by.get("tcp_outage") for by in samples.values()):
        measures.append("tcp_outage")  # harness stats: the TCP clients' outage
    fig, axes = plt.subplots(2, len(measures), figsize=(14, 7))
    for col, m in enumerate(measures):
        hist, cdf = axes[0][col], axes[1][col]
        for impl, by in samples.items():
            xs = sorted(by.get(m, []))
            if not xs:
                continue
            hist.hist(xs, bins=min(20, max(5, len(xs) // 2)), alpha=0.5, label=impl)
            cdf.step([xs[0], *xs], [0.0] + [(k + 1) / len(xs) for k in range(len(xs))],
                     where="post",
                     label=f"{impl} (n={len(xs)})")
        if m == "detection" and gap:
            cdf.plot([0, gap, gap * 1.2], [0, 1, 1], linestyle="--", color="#000000",
                     label=f"theory: uniform over {gap:g} s")
        hist.set_title(f"{m} (s)")
        cdf.set_xlabel("seconds")
        cdf.set_ylabel("CDF")
        hist.legend(fontsize=8)
        cdf.legend(fontsize=8)
    fig.tight_layout()
    return svg_text(fig)
