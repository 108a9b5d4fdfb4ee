"""Which ctdbd the ctdb backend runs: Debian's package, or a self-built Samba.

Debian's `ctdb` package has fixed paths (/usr/sbin/ctdbd, /etc/ctdb, ...).
A Samba built from source and installed with `./configure --prefix=DIR &&
make install` puts everything under DIR, and its ctdbd has DIR's paths
compiled in (ctdb/common/path.c; only CTDB_TEST_MODE, which this backend
does not use, moves them).  So for a prefix the backend asks the build's own
`ctdb-path` helper where the daemon looks for its configuration, databases
and socket, and binds each node's directories over exactly those.

`--ctdb-prefix DIR` (pytest and `harness`) or the environment variable
FTH_CTDB_PREFIX choose a build; the option sets the variable, so xdist
workers and lab supervisors started later use the same build.

The release matters in one place the backend writes: 4.15 knows the cluster
lock only as ``recovery lock`` (4.16 renamed it ``cluster lock`` and still
accepts the old name), read from `ctdb version`.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

PREFIX_ENV = "FTH_CTDB_PREFIX"
INSTALL_HINT = "apt-get install ctdb ethtool iptables (or `make deps`)"
BUILD_HINT = ("a Samba built with `./configure --prefix=DIR --with-cluster-support "
              "&& make install`")


class CtdbInstallError(ValueError):
    """A --ctdb-prefix that holds no usable ctdb build; the message says what is missing."""


@dataclass(frozen=True)
class CtdbInstall:
    """Where one ctdb installation keeps its programs and what its daemon expects."""

    prefix: Path | None
    """None: Debian's package."""
    ctdbd: Path
    ctdb: Path
    helper_dir: Path
    """ctdb's helpers (eventd, recovery and takeover helpers): libexec/ctdb."""
    helper_files: Path
    """The shipped /etc/ctdb files (functions, notify.sh, ...), copied into each node."""
    legacy_scripts: Path
    """The shipped legacy event scripts (00.ctdb.script, 10.interface.script)."""
    etcdir: str
    vardir: str
    rundir: str
    """The compiled-in paths ctdbd uses, as seen inside the node's mount namespace."""

    @property
    def log_file(self) -> str:
        """Where ctdbd logs inside the node: Debian's /var/log/ctdb, else the var dir
        (a prefix build may have no log directory of its own to bind over)."""
        return "/var/log/ctdb/log.ctdb" if self.prefix is None else f"{self.vardir}/log.ctdb"

    def version(self) -> tuple[int, int] | None:
        """The release (major, minor) from `ctdb version`, None if it cannot be read."""
        return _version(str(self.ctdb))

    def lock_option(self) -> str:
        """ctdb.conf's [cluster] key for the cluster lock in this release."""
        v = self.version()
        return "recovery lock" if v is not None and v < (4, 16) else "cluster lock"

    def leader_capability_option(self) -> tuple[str, str]:
        """ctdb.conf's section and key for a node's leader capability: 4.17
        renamed [legacy] `recmaster capability` to [cluster] `leader capability`."""
        v = self.version()
        if v is not None and v < (4, 17):
            return "legacy", "recmaster capability"
        return "cluster", "leader capability"


DEBIAN = CtdbInstall(
    prefix=None, ctdbd=Path("/usr/sbin/ctdbd"), ctdb=Path("/usr/bin/ctdb"),
    helper_dir=Path("/usr/libexec/ctdb"), helper_files=Path("/etc/ctdb"),
    legacy_scripts=Path("/usr/share/ctdb/events/legacy"),
    etcdir="/etc/ctdb", vardir="/var/lib/ctdb", rundir="/run/ctdb")


@functools.cache
def _version(ctdb: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([ctdb, "version"], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"(\d+)\.(\d+)", out.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


@functools.cache
def from_prefix(prefix: str) -> CtdbInstall:
    """The build installed under `prefix`; CtdbInstallError names what is missing."""
    root = Path(prefix)
    where = f"--ctdb-prefix {prefix}"
    if not root.is_absolute():
        raise CtdbInstallError(f"{where}: give an absolute path")
    if not root.is_dir():
        raise CtdbInstallError(f"{where}: no such directory (expected {BUILD_HINT})")
    helper_dir = root / "libexec" / "ctdb"
    need = {"ctdbd": root / "sbin" / "ctdbd", "ctdb": root / "bin" / "ctdb",
            "ctdb-path": helper_dir / "ctdb-path", "ctdb-eventd": helper_dir / "ctdb-eventd"}
    missing = [str(p) for p in need.values() if not os.access(p, os.X_OK)]
    if missing:
        raise CtdbInstallError(f"{where}: missing {', '.join(missing)} (expected {BUILD_HINT})")
    paths = {}
    for what in ("etcdir", "vardir", "rundir", "datadir"):
        try:
            r = subprocess.run([str(need["ctdb-path"]), what], capture_output=True, text=True,
                               timeout=10, stdin=subprocess.DEVNULL, env={
                                   k: v for k, v in os.environ.items() if k != "CTDB_TEST_MODE"})
        except (OSError, subprocess.SubprocessError) as e:
            raise CtdbInstallError(f"{where}: {need['ctdb-path']} {what} failed: {e}") from None
        value = r.stdout.strip()
        if r.returncode != 0 or not value.startswith("/"):
            raise CtdbInstallError(f"{where}: {need['ctdb-path']} {what} printed {value!r} "
                                   f"(exit {r.returncode}), not a path")
        paths[what] = value
    legacy = Path(paths["datadir"]) / "events" / "legacy"
    if not (legacy / "10.interface.script").is_file():
        raise CtdbInstallError(f"{where}: no {legacy}/10.interface.script "
                               f"(expected {BUILD_HINT})")
    return CtdbInstall(prefix=root, ctdbd=need["ctdbd"], ctdb=need["ctdb"],
                       helper_dir=helper_dir, helper_files=Path(paths["etcdir"]),
                       legacy_scripts=legacy, etcdir=paths["etcdir"], vardir=paths["vardir"],
                       rundir=paths["rundir"])


def current() -> CtdbInstall:
    """The installation chosen for this process: FTH_CTDB_PREFIX's build, else Debian's."""
    prefix = os.environ.get(PREFIX_ENV, "")
    return from_prefix(prefix) if prefix else DEBIAN


def choose(prefix: str | None) -> CtdbInstall:
    """Check a --ctdb-prefix and make it this process's (and its children's) choice."""
    if not prefix:
        return current()
    install = from_prefix(prefix)
    os.environ[PREFIX_ENV] = prefix
    return install
