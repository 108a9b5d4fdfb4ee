"""Merge the durations the CI shards measured into one .test_durations.

    python3 mk/merge_durations.py BASE SHARD.json...

Every shard starts from a copy of BASE (the committed .test_durations, so
all shards split the suite the same way) and pytest-split's
--store-durations writes it back with the durations of the tests that shard
ran.  A test's new value is the one that differs from BASE; a test no shard
ran keeps BASE's.  BASE is rewritten in pytest-split's own format (sorted
JSON, indent 4).  Standard library only: the CI job runs it before any venv.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def merge(base: dict[str, float], shards: list[dict[str, float]]) -> dict[str, float]:
    """BASE with every value a shard changed or added."""
    out = dict(base)
    for shard in shards:
        for test, seconds in shard.items():
            if base.get(test) != seconds:
                out[test] = seconds
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: merge_durations.py BASE SHARD.json...", file=sys.stderr)
        return 2
    base_path = Path(argv[0])
    base = json.loads(base_path.read_text()) if base_path.exists() else {}
    try:
        shards = [json.loads(Path(p).read_text()) for p in argv[1:]]
    except (OSError, ValueError) as e:
        print(f"merge_durations.py: {e}", file=sys.stderr)
        return 2
    merged = merge(base, shards)
    base_path.write_text(json.dumps(merged, sort_keys=True, indent=4) + "\n")
    print(f"{base_path}: {len(merged)} tests ({len(merged) - len(base)} new)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
