"""Copy the expected `ctdb` tool output out of Samba's own unit tests, per release.

Run by hand (not by the suite) against a Samba git clone:

    python tests/unit/data/ctdb_versions/extract.py SAMBA_GIT_DIR

For each release tag samba-4.15.0 ... samba-4.22.0 it reads
ctdb/tests/UNIT/tool/ctdb.{status,nodestatus,ip,ifaces,recmaster,leader}.*.sh
and keeps every successful expectation (``required_result 0 <<EOF`` or
``ok <<EOF`` / ``ok N``, followed by ``simple_test ARGS``) as one file,
4.NN/<script>.<k>.out, listed in 4.NN/index.json with the command, its
arguments and where it came from.  Expectations that are errors or use shell
variables are skipped: the harness parses only what a working ctdb prints.
The output files are Samba's (GPL-3.0-or-later test data), byte for byte.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

VERSIONS = range(15, 23)
COMMANDS = ("status", "nodestatus", "ip", "ifaces", "recmaster", "leader")
TOOL_DIR = "ctdb/tests/UNIT/tool"
HERE = Path(__file__).resolve().parent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def expectations(script: str, command: str) -> list[tuple[list[str], int, str]]:
    """(simple_test arguments, exit status, expected stdout) for each kept expectation.

    Kept: exit status 0, and for `nodestatus` any status when the text is node
    lines (its exit status is the node's flags, not an error).
    """
    out: list[tuple[list[str], int, str]] = []
    lines = script.split("\n")
    pending: tuple[int, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        m = re.fullmatch(r"(?:required_result (\d+)|ok) <<EOF", line)
        if m:
            rc = int(m.group(1) or 0)
            body = []
            i += 1
            while lines[i] != "EOF":
                body.append(lines[i])
                i += 1
            text = "\n".join(body) + "\n"
            node_lines = re.match(r"Number of nodes:|pnn:|\|Node\|", text) is not None
            keep = "$" not in text and (rc == 0 or (command == "nodestatus" and node_lines))
            pending = (rc, text) if keep else None
        elif line.startswith(("required_result ", "ok")):
            single = re.fullmatch(r"ok (\S+)", line)
            pending = (0, single.group(1) + "\n") if single and "$" not in line else None
        elif line.startswith("simple_test"):
            if pending is not None:
                out.append((shlex.split(line)[1:], *pending))
            pending = None
        i += 1
    return out


def main(repo: Path) -> None:
    for v in VERSIONS:
        tag = f"samba-4.{v}.0"
        dest = HERE / f"4.{v}"
        dest.mkdir(exist_ok=True)
        index = []
        for path in git(repo, "ls-tree", "--name-only", tag, TOOL_DIR + "/").split():
            name = Path(path).name
            parts = name.split(".")
            if len(parts) != 4 or parts[0] != "ctdb" or parts[1] not in COMMANDS:
                continue
            script = git(repo, "show", f"{tag}:{path}")
            for k, (args, rc, text) in enumerate(expectations(script, parts[1]), 1):
                fname = f"{name[:-3]}.{k}.out"
                (dest / fname).write_text(text)
                index.append({"file": fname, "command": parts[1], "args": args, "rc": rc,
                              "source": f"{tag}:{path}"})
        (dest / "index.json").write_text(json.dumps(index, indent=1) + "\n")
        print(f"4.{v}: {len(index)} samples")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: extract.py SAMBA_GIT_DIR (a clone of samba-team/samba with tags)")
    main(Path(sys.argv[1]))
