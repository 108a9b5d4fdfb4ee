"""The one `ctdb` output parser reads what CTDB 4.15 to 4.22 print.

The samples are the expected outputs of Samba's own tool tests
(ctdb/tests/UNIT/tool/*.sh) at each release tag, copied byte for byte by
tests/unit/data/ctdb_versions/extract.py: the releases Debian 12/13 and
Ubuntu 22.04/24.04 ship (4.15 Ubuntu 22.04, 4.17 Debian 12, 4.19 Ubuntu
24.04, 4.22 Debian 13) and those between.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import ctdb

DATA = Path(__file__).parent / "data" / "ctdb_versions"
VERSIONS = [f"4.{v}" for v in range(15, 23)]


def samples() -> list[tuple[str, dict[str, object]]]:
    out = []
    for version in VERSIONS:
        for entry in json.loads((DATA / version / "index.json").read_text()):
            out.append((version, entry))
    return out


SAMPLES = samples()


def modernized(text: str) -> str:
    """A sample in 4.17+'s spelling: the two renames older CTDB differs by.

    ``Recovery master:`` became ``Leader:`` in 4.16; the -X node table gained
    the ``Unknown`` column (after Disconnected) in 4.17.
    """
    text = text.replace("Recovery master:", "Leader:")
    if text.startswith("|Node|IP|Disconnected|Banned|"):
        rows = []
        for i, line in enumerate(text.splitlines()):
            cells = line.split("|")
            cells.insert(4, "Unknown" if i == 0 else "0")
            rows.append("|".join(cells))
        text = "\n".join(rows) + "\n"
    return text


def reformatted(command: str, args: list[str], text: str) -> str:
    """Parse a sample with the harness's parser and print it with its formatter."""
    x = "-X" in args
    if command == "status":
        st = ctdb.parse_status(text)
        return ctdb.format_status_x(st) if x else ctdb.format_status(st)
    if command == "nodestatus":
        nodes = ctdb.parse_nodestatus(text)
        if x:
            return ctdb.format_status_x(nodes)
        return ctdb.format_nodestatus(nodes, all_nodes=text.startswith("Number of nodes"))
    if command == "ip":
        mapping = ctdb.parse_ip(text)
        if x:
            return ctdb.format_ip_x(mapping)
        head = re.match(r"Public IPs on node (\d+)", text)
        return ctdb.format_ip(int(head.group(1)) if head else None, mapping)
    if command == "ifaces":
        ifaces = ctdb.parse_ifaces(text)
        pnn = re.search(r"on node (\d+)", text)
        if x:
            return ctdb.format_ifaces_x(ifaces, pnn=int(pnn.group(1)) if pnn else None)
        return ctdb.format_ifaces(int(pnn.group(1)) if pnn else 0, ifaces)
    assert command in ("leader", "recmaster")
    return f"{ctdb.parse_leader(text)}\n"


def test_every_release_has_samples_of_every_command() -> None:
    """Each release contributes status, nodestatus, ip, ifaces and its leader command."""
    for version in VERSIONS:
        commands = {e["command"] for v, e in SAMPLES if v == version}
        leader = "recmaster" if version == "4.15" else "leader"
        assert commands == {"status", "nodestatus", "ip", "ifaces", leader}, version


@pytest.mark.parametrize(("version", "entry"), SAMPLES,
                         ids=[f"{v}-{e['file']}" for v, e in SAMPLES])
def test_parser_reads_release_output(version: str, entry: dict[str, object]) -> None:
    """Parsed and printed again in today's format, the sample comes back byte for byte
    (older releases up to the two documented renames)."""
    text = (DATA / version / str(entry["file"])).read_text()
    args = [str(a) for a in entry["args"]]  # type: ignore[attr-defined]
    command = str(entry["command"])
    if command == "ip" and "-v" in args and "-X" not in args:
        # the -v form carries interfaces the parser keeps no record of
        mapping = ctdb.parse_ip(text)
        assert len(mapping) == len(text.splitlines()) - 1
        return
    assert reformatted(command, args, text) == modernized(text)


def test_old_release_leader_line_is_read() -> None:
    """4.15's ``Recovery master:0`` is the leader, as 4.16+'s ``Leader:0``."""
    old = (DATA / "4.15" / "ctdb.status.001.1.out").read_text()
    new = (DATA / "4.22" / "ctdb.status.001.1.out").read_text()
    assert "Recovery master:0" in old and "Leader:0" in new
    assert ctdb.parse_status(old) == ctdb.parse_status(new)
    assert ctdb.parse_status(old).leader == 0
