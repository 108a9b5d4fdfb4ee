"""The cluster's topology drawn with matplotlib: the switch namespace with
one bridge per network, each node with its interfaces (a bond with its
slaves), a cable per port to its bridge, and the client on the public
bridges. Drawn from harness.topology.Topology, the same data the builder
uses, so the picture is the cluster that ran."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from harness.report.charts import svg_text
from harness.topology import Topology

NET_COLOURS = ("#5c6bc0", "#26a69a", "#ef6c00", "#8d6e63")


def _box(ax, x: float, y: float, w: float, h: float, text: str, face: str,  # noqa: ANN001
         size: float = 8) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                facecolor=face, edgecolor="#333333", linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def draw(top: Topology) -> str:
    """SVG of the topology (nodes left to right, switch above, client right)."""
    n = top.nodes
    width = max(8.0, 1.6 * (n + 2))
    fig, ax = plt.subplots(figsize=(width, 4.2))
    ax.set_xlim(-1, n + 1.5)
    ax.set_ylim(-0.6, 4.3)
    ax.axis("off")
    nets = list(top.networks)
    colour = {net.name: NET_COLOURS[i % len(NET_COLOURS)] for i, net in enumerate(nets)}
    # the switch: one bridge per network, side by side
    _box(ax, (n - 1) / 2, 3.85, max(2.0, n * 0.9), 0.5, "switch (namespace sw)", "#eceff1", 9)
    bridge_x = {net.name: (n - 1) / 2 + (i - (len(nets) - 1) / 2) * 1.6
                for i, net in enumerate(nets)}
    for net in nets:
        _box(ax, bridge_x[net.name], 3.1, 1.4, 0.4, f"br-{net.name}\n{net.subnet}", "#ffffff", 7)
    public = [pub.name for pub in top.public_networks]
    for pnn in range(n):
        _box(ax, pnn, 0.0, 0.9, 0.5, f"node {pnn}", "#e3f2fd", 9)
        for k, iface in enumerate(top.interfaces):
            ix = pnn + (k - (len(top.interfaces) - 1) / 2) * 0.45
            label = iface.name + (f"\n{iface.bond.mode}" if iface.bond else "")
            _box(ax, ix, 0.85, 0.42, 0.38, label, "#fffde7", 6)
            ports = iface.ports if iface.bond else (iface.name,)
            for j, port in enumerate(ports):
                px = ix + (j - (len(ports) - 1) / 2) * 0.2
                if iface.bond:
                    ax.text(px, 1.3, port, ha="center", fontsize=6)
                ax.plot([px, bridge_x[iface.network]], [1.45 if iface.bond else 1.05, 2.9],
                        color=colour[iface.network], linewidth=1)
    for name in public:
        ax.plot([bridge_x[name], n + 0.6], [2.9, 1.2], color=colour[name], linewidth=1)
    _box(ax, n + 0.6, 1.0, 0.9, 0.45, "client\nc-" + "/".join(public), "#fce4ec", 7)
    ips = ", ".join(str(p.address.ip) for p in top.public_addresses)
    ax.text((n - 1) / 2, -0.5, f"public IPs: {ips}", ha="center", fontsize=8)
    fig.tight_layout()
    return svg_text(fig)
