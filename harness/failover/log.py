"""failoverd's logging, in ctdbd's own format and levels.

The harness's ctdb-format log parser reads both implementations' logs with
one set of patterns, so every line must carry ctdbd's timestamp layout and
the daemon needs ctdbd's NOTICE level between INFO and WARNING. Every part
of the daemon logs through the one `log` here.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

NOTICE = 25
"""ctdbd's default level; Python's logging has no name for it."""

LEVELS = {"ERROR": logging.ERROR, "WARNING": logging.WARNING, "NOTICE": NOTICE,
          "INFO": logging.INFO, "DEBUG": logging.DEBUG}
"""The levels `--log-level` and `setdebug` accept, as ctdb's debug level names."""

log = logging.getLogger("failoverd")


class CtdbFormatter(logging.Formatter):
    """`2017/06/22 14:27:17.465327 [261821]: message`, as ctdbd logs."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.localtime(record.created)
        usec = int((record.created % 1) * 1e6)
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", t)
        return f"{stamp}.{usec:06d} [{os.getpid():>6}]: {record.getMessage()}"


def setup_logging(path: Path | None, level: str) -> None:
    """Send every record to `path` (or stderr) in ctdbd's format at `level`."""
    logging.addLevelName(NOTICE, "NOTICE")
    handler: logging.Handler = (logging.FileHandler(path) if path
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(CtdbFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
