"""What an import yields and how it fails: ImportedCluster and CtdbImportError.

Every module of the package raises CtdbImportError, so that a caller (the
``harness import-ctdb`` command) catches one type and prints one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.ctdb import ConfigError
from harness.topology import Topology, save_topology


class CtdbImportError(ValueError):
    """Bad input for the import, rendered as one line ``FILE:LINE: what; how to fix``."""

    def __init__(self, source: str, line: int | None, problem: str, fix: str) -> None:
        self.source = source
        self.line = line
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {problem}; {fix}")

    @classmethod
    def from_config(cls, e: ConfigError) -> CtdbImportError:
        """The same line, as ours, so callers catch one exception type."""
        return cls(e.source, e.line, e.problem, e.fix)


@dataclass(frozen=True)
class ImportedCluster:
    """What the harness needs to rebuild a field cluster (see the package docstring)."""

    topology: Topology
    tunables: dict[str, int]
    """Canonical tunable name -> value, only those the field's files set."""
    script_options: dict[str, str]
    mapping: dict[str, str]
    """Field -> harness: node addresses, public addresses, then public networks."""
    cluster_lock: str | None = None
    """What ctdb.conf (or a legacy ctdbd.conf) names; the harness uses its own."""
    warnings: list[str] = field(default_factory=list)
    deleted_nodes: tuple[int, ...] = ()
    """Field pnns of deleted nodes that the topology builds as live nodes."""

    def save_mapping(self, path: str | Path) -> None:
        """The mapping as a JSON object, to translate the customer's logs later."""
        p = Path(path)
        with _writing(p):
            p.write_text(json.dumps(self.mapping, indent=2) + "\n")

    def save_topology(self, path: str | Path) -> None:
        """The topology as TOML that `load_topology` reads back to an equal Topology."""
        p = Path(path)
        with _writing(p):
            save_topology(self.topology, p,
                          f"imported from {self.topology.source} by `harness import-ctdb`")


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OSError while writing `path` becomes the import's one-line error."""
    try:
        yield
    except OSError as e:
        raise CtdbImportError(str(path), None, f"cannot write it ({e.strerror})",
                              "check the path and its permissions") from None


def format_mapping(mapping: Mapping[str, str]) -> str:
    """One ``field -> harness`` pair a line, the arrows aligned."""
    width = max((len(k) for k in mapping), default=0)
    return "".join(f"{k:<{width}} -> {v}\n" for k, v in mapping.items())
