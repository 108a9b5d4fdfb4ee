"""Log followers: lines of a daemon's log file as timeline events.

Event kind (source "log"): log, with the line and the file's path. A line
is dated when read, so its time is at most one poll period late.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.record.component import RecorderThread
from harness.record.events import Timeline


@dataclass(frozen=True)
class LogSpec:
    """A log file to follow, the node it belongs to, and which lines to keep."""

    path: Path
    node: int | None = None
    pattern: str | None = None
    from_start: bool = False


class LogFollower(RecorderThread):
    """Tails a file (it may appear later, be truncated or replaced) and emits
    matching lines as `log` events, dated when read (poll period 20 ms)."""

    def __init__(self, spec: LogSpec, timeline: Timeline, stop: threading.Event,
                 interval: float = 0.02) -> None:
        super().__init__(f"log:{spec.path.name}", timeline, stop)
        self.spec = spec
        self.regex = re.compile(spec.pattern) if spec.pattern else None
        self.interval = interval
        self.beat_bound = interval

    def run(self) -> None:
        with self.counting_cpu():
            self._follow()

    def _follow(self) -> None:
        f = None
        ino = None
        st: os.stat_result | None  # None: the file is gone (rotated away, not yet back)
        buf = b""
        path = self.spec.path
        try:
            try:
                st = path.stat()
                f = open(path, "rb")  # noqa: SIM115 - kept open across iterations
                ino = st.st_ino
                if not self.spec.from_start:
                    f.seek(st.st_size)
            except FileNotFoundError:
                pass
            self.ready.set()
            while True:
                self.beat()
                stopping = self.stop_flag.is_set()
                if f is None:
                    with contextlib.suppress(FileNotFoundError):
                        f = open(path, "rb")  # noqa: SIM115
                        ino = os.fstat(f.fileno()).st_ino
                if f is not None:
                    chunk = f.read()
                    t = time.monotonic()
                    if chunk:
                        buf += chunk
                        *lines, buf = buf.split(b"\n")
                        for raw in lines:
                            self._line(raw, t)
                    else:
                        try:
                            st = path.stat()
                        except FileNotFoundError:
                            st = None
                        if st is None or st.st_ino != ino or st.st_size < f.tell():
                            # rotated, replaced or truncated: start the new file from 0
                            f.close()
                            f, buf = None, b""
                            if st is not None:
                                f = open(path, "rb")  # noqa: SIM115
                                ino = st.st_ino
                            continue
                if stopping:
                    break
                self.stop_flag.wait(self.interval)
        finally:
            if f is not None:
                f.close()

    def _line(self, raw: bytes, t: float) -> None:
        line = raw.decode(errors="replace").rstrip("\r")
        if not line or (self.regex is not None and not self.regex.search(line)):
            return
        self.emit("log", "log", self.spec.node, t, line=line, path=str(self.spec.path))

