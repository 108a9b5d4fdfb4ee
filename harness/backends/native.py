"""The project's own implementation (harness.failover) as a harness backend.

Per node, under <run>/work/native/node<pnn>/: nodes, public_addresses,
ctdb.tunables, script.options, events/, failoverd.log, ctl.sock; the cluster
lock is one file all nodes of this cluster share (ctdb_mutex_fcntl_helper
locks it), or with topology cluster_lock = "etcd" ctdb_etcd_lock with the
node's own `etcd` config file and a bin/ctdb that answers `ctdb pnn` (the
helper asks it; failoverd runs its helpers with CTDB_BASE = the node dir).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from harness.backends.base import Backend, Daemon
from harness.cluster import Cluster, ManagedProcess
from harness.ctdb.cluster_lock import ETCD_HELPER, EtcdLockConfig, etcd_config
from harness.failover import ctl
from harness.failover.tickles import KILLTCP_TIMEOUT


def write_key(path: Path) -> Path:
    """A fresh cluster key at path, mode 0600 from its first byte: written to
    a new private file, then renamed over path, so no reader ever sees it
    readable by others or half written."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


class NativeBackend(Backend):
    name = "native"
    killtcp_release_delay = KILLTCP_TIMEOUT  # failoverd's killtcp gives up after this

    def __init__(self, cluster: Cluster, tunables: Mapping[str, int] | None = None,
                 options: Mapping[str, str] | None = None, event_mode: bool = False,
                 cluster_key: bool = True, log_level: str = "INFO", tickles: bool = True
                 ) -> None:
        super().__init__(cluster, tunables, options)
        self.event_mode = event_mode
        self.tickles = tickles  # False: failoverd --no-tickles
        self.log_level = log_level
        # our children, or (after attach) daemons another process of the run started
        self.procs: dict[int, ManagedProcess | Daemon] = {}
        self.lock = self.dir / "cluster.lock"
        self.key_file: Path | None = None
        if cluster_key:
            self.key_file = write_key(self.dir / "cluster.key")
        for pnn in range(len(cluster.nodes)):
            self.write_config(pnn)

    def node_dir(self, pnn: int) -> Path:
        return self.dir / f"node{pnn}"

    def lock_config(self) -> EtcdLockConfig | None:
        """ctdb_etcd_lock's settings (None with the fcntl lock), as ctdbd gets them."""
        return etcd_config(self.cluster.topology)

    def lock_setting(self) -> str:
        """failoverd's --cluster-lock: ctdb.conf's `cluster lock` for the same lock."""
        return f"!{ETCD_HELPER}" if self.lock_config() else str(self.lock)

    def write_config(self, pnn: int) -> None:
        """Node pnn's directory: the CTDB files its daemon loads, and events/
        (and, with etcd, the helper's config and its `ctdb pnn`)."""
        d = self.node_dir(pnn)
        (d / "events").mkdir(parents=True, exist_ok=True)
        self.write_ctdb_files(d)
        etcd = self.lock_config()
        if etcd is not None:
            (d / "etcd").write_text(etcd.text())
            shim = d / "bin" / "ctdb"
            shim.parent.mkdir(exist_ok=True)
            shim.write_text("#!/bin/sh\n# ctdb_etcd_lock asks `ctdb pnn`\n"
                            f'[ "$1" = pnn ] && exec echo {pnn}\n'
                            'echo "only `ctdb pnn` here; use failoverctl" >&2; exit 2\n')
            shim.chmod(0o755)

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        for pnn in range(len(self.cluster.nodes)):
            self.start_node(pnn)

    def start_node(self, pnn: int) -> None:
        d = self.node_dir(pnn)
        argv = [sys.executable, "-m", "harness.failover.daemon", "--dir", str(d),
                "--pnn", str(pnn), "--cluster-lock", self.lock_setting(),
                "--socket", str(d / "ctl.sock"), "--log", str(self.log_path(pnn)),
                "--log-level", self.log_level]
        if not self.cluster.topology.leader_capable(pnn):
            argv.append("--no-leader-capability")
        if self.event_mode:
            argv.append("--event-mode")
        if not self.tickles:
            argv.append("--no-tickles")
        argv += ["--key-file", str(self.key_file)] if self.key_file else ["--no-auth"]
        self.procs[pnn] = self.cluster.nodes[pnn].spawn(
            argv, self._what(pnn), log=d / "stderr.log")

    @staticmethod
    def _what(pnn: int) -> str:
        """How node pnn's daemon is named in the run's process record."""
        return f"failoverd node {pnn}"

    def attach(self) -> None:
        """Take over every node's running failoverd, found in the run's record."""
        self.procs = {pnn: self.recorded_daemon(pnn, self._what(pnn))
                      for pnn in range(len(self.cluster.nodes))}

    def stop_node(self, pnn: int) -> None:
        proc = self.procs.pop(pnn, None)
        if proc is not None:
            proc.stop(timeout=10)

    def daemon_pid(self, pnn: int) -> int:
        return self.procs[pnn].pid

    def process(self, pnn: int) -> ManagedProcess | Daemon:
        return self.procs[pnn]

    def stop(self) -> None:
        """SIGTERM every daemon at once (no takeover churn), then reap each."""
        procs = list(self.procs.values())
        self.procs.clear()
        for proc in procs:
            proc.signal(signal.SIGTERM)
        for proc in procs:
            proc.stop(timeout=10)

    # -- CLI ------------------------------------------------------------------------
    def socket_path(self, pnn: int) -> Path:
        return self.node_dir(pnn) / "ctl.sock"

    def ctl(self, pnn: int, *args: str, check: bool = True, timeout: float = 10) -> str:
        """In-process client of the node's control socket (same code as failoverctl)."""
        rc, out, err = ctl.call(self.socket_path(pnn), args, timeout)
        if check and rc != 0:
            raise RuntimeError(f"failoverctl {' '.join(args)} on node {pnn}: "
                               f"{err.strip() or out.strip()}")
        return out

    def monitor_due(self, pnn: int) -> float | None:
        out = self.ctl(pnn, "monitorinfo")
        return float(out.split("due_in:")[1])

    def cli_argv(self, pnn: int, *args: str) -> list[str]:
        """failoverctl on the node's control socket, run by this interpreter (the
        `failoverctl` script need not be on PATH)."""
        return [sys.executable, "-m", "harness.failover.ctl", "--socket",
                str(self.socket_path(pnn)), *args]

    def enter_argv(self, pnn: int) -> list[str]:
        """The node's namespace, with $FAILOVER_SOCKET naming its daemon's control
        socket, so `failoverctl status` inside works as `ctdb status` does."""
        return self.cluster.nodes[pnn].argv(
            ["env", f"{ctl.ENV_SOCKET}={self.socket_path(pnn)}"])

    # -- files -------------------------------------------------------------------------
    def log_path(self, pnn: int) -> Path:
        return self.node_dir(pnn) / "failoverd.log"

    def event_script_dir(self, pnn: int) -> Path:
        return self.node_dir(pnn) / "events"

    def config_files(self, pnn: int) -> list[Path]:
        d = self.node_dir(pnn)
        return [d / name for name in ("nodes", "public_addresses", "ctdb.tunables",
                                      "script.options")]
