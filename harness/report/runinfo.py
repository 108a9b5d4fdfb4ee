"""run.json: what a report needs that the timeline does not hold (title,
implementation, tunables, the topology, the verdict), saved beside
timeline.jsonl so `harness report` can redraw a run later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.model import RunInfo
from harness.topology import topology_from_dict, topology_to_dict


def info_to_dict(info: RunInfo) -> dict[str, Any]:
    return {"title": info.title, "implementation": info.implementation,
            "tunables": dict(info.tunables), "verdict": info.verdict, "slack": info.slack,
            "topology": None if info.topology is None else topology_to_dict(info.topology)}


def save_info(info: RunInfo, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info_to_dict(info), indent=2) + "\n")
    return path


def load_info(path: Path) -> RunInfo:
    """Read run.json; raises ValueError (one line: file, key) when it is wrong."""
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable as JSON ({e})") from None
    if not isinstance(d, dict) or not isinstance(d.get("title"), str):
        raise ValueError(f"{path}: needs a JSON object with a string 'title'")
    top = d.get("topology")
    try:
        tunables = {str(k): int(v) for k, v in (d.get("tunables") or {}).items()}
        slack = float(d.get("slack", 1.0))
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"{path}: 'tunables' must map names to whole numbers and 'slack' "
                         "be a number") from None
    return RunInfo(d["title"], str(d.get("implementation", "?")), tunables,
                   None if top is None else topology_from_dict(top, str(path)),
                   str(d.get("verdict", "")), slack)
