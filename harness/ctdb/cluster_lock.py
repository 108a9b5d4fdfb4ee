"""How a node takes the cluster lock: CTDB's cluster mutex helper, as both
implementations run it (ctdb/doc/cluster_mutex_helper.txt).

A helper prints one status character ('0' taken, '1' contention, '2'
timeout, '3' error), holds the mutex until SIGTERM, and its exit means the
mutex is lost. CTDB ships two that the harness uses:

* ctdb_mutex_fcntl_helper FILE: an fcntl lock on a file all nodes share
  (ctdbd runs it for `cluster lock = FILE`); topology cluster_lock "fcntl".
* ctdb_etcd_lock: a python-etcd Lock under /_locks/_ctdb/<netbios name>
  (`cluster lock = !/usr/libexec/ctdb/ctdb_etcd_lock`); topology
  cluster_lock "etcd". It reads `key = value` lines from $CTDB_BASE/etcd
  (default /etc/ctdb/etcd): host, port, lock_ttl (9), lock_refresh (2), and
  any python-etcd client keyword (read_timeout: 60 by default). It also asks
  `testparm` for the netbios name (the same on every node here: one host
  name, one smb.conf, so every node contends for one key) and `ctdb pnn`,
  which the native daemon answers through a shim of its own (see
  harness.failover.mutex_helper). Its interpreter is `/usr/bin/env python3`,
  so its PATH must find the system Python that has python3-etcd, not the
  harness's virtualenv or a pyenv shim: HELPER_PATH comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.topology import Topology

ETCD_HELPER = "/usr/libexec/ctdb/ctdb_etcd_lock"
FCNTL_HELPER = "/usr/libexec/ctdb/ctdb_mutex_fcntl_helper"
# The system's programs first: ctdb_etcd_lock's `env python3` must find the
# Python that has python3-etcd.
HELPER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class EtcdLockConfig:
    """ctdb_etcd_lock's config file. The helper's own defaults (lock_ttl 9,
    lock_refresh 2, python-etcd's read_timeout 60) were measured to livelock
    ctdbd after a partition and to let an isolated holder keep the lock for
    a minute (see the report of issue 12): every failed attempt leaves its
    key behind for lock_ttl, and a contender retries every leader timeout
    (5 s), so with lock_ttl > 5 its own previous key always queues ahead of
    it; an isolated holder's refresh hangs for read_timeout before the
    helper exits. So the harness runs a lock_ttl below ctdbd's leader
    timeout and a read_timeout below the TTL, and bounds name these."""

    host: str
    port: int = 2379
    lock_ttl: int = 4
    lock_refresh: int = 1
    read_timeout: int = 2

    def text(self) -> str:
        return (f"host = {self.host}\nport = {self.port}\n"
                f"lock_ttl = {self.lock_ttl}\nlock_refresh = {self.lock_refresh}\n"
                f"read_timeout = {self.read_timeout}\n")

    @property
    def loss_bound(self) -> float:
        """Longest time from a holder's cut to its helper's exit: one refresh
        gap, then a request that times out."""
        return float(self.lock_refresh + self.read_timeout)


def etcd_config(topology: Topology) -> EtcdLockConfig | None:
    """ctdb_etcd_lock's settings for a topology (None with the fcntl lock)."""
    if topology.cluster_lock != "etcd":
        return None
    return EtcdLockConfig(host=str(topology.lock_address().ip))


def with_helper_path(path: str | None) -> str:
    """PATH for a process that runs the helpers: the system's dirs, then `path`."""
    return HELPER_PATH + (f":{path}" if path else "")
