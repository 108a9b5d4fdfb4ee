"""Network namespaces, and netlink sockets that provably live in them.

pyroute2 keeps one socket per thread, and a socket belongs to the namespace
its thread was in when it was opened. A socket opened or used in the wrong
thread once put test addresses on the host's eth0. So every netlink change
here happens in a fresh thread that has entered the target namespace, through
an `NsRoute` that checks, before each change, that its socket is in that
namespace and is not the host's (ioctl SIOCGSKNS on the socket).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar, overload

from pyroute2 import IPRoute

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 2
SIOCGSKNS = 0x894C

_libc = ctypes.CDLL(None, use_errno=True)
_host_lock = threading.Lock()
_host_ino: int | None = None


class NamespaceSafetyError(RuntimeError):
    """A change was about to land in the wrong namespace; nothing was done."""


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def host_netns_ino() -> int:
    """Inode of the namespace the harness started in: the one never to touch."""
    global _host_ino
    with _host_lock:
        if _host_ino is None:
            _host_ino = os.stat(f"/proc/{os.getpid()}/ns/net").st_ino
        return _host_ino


host_netns_ino()  # pin it at import, from the main thread


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def netns_ino(name: str) -> int:
    return netns_path(name).stat().st_ino


def list_netns(prefix: str = "") -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def socket_netns_ino(fd: int) -> int:
    """Namespace inode of the socket behind `fd` (SIOCGSKNS)."""
    nsfd = fcntl.ioctl(fd, SIOCGSKNS)
    try:
        return os.fstat(nsfd).st_ino
    finally:
        os.close(nsfd)


_CHANGES = {"add", "set", "del", "delete", "remove", "replace", "change", "flush"}


class NsRoute:
    """IPRoute bound to one namespace; refuses changes from anywhere else."""

    def __init__(self, name: str, ipr: IPRoute, ino: int) -> None:
        self.name, self._ipr, self._ino = name, ipr, ino
        self._thread = threading.get_ident()
        self.verify()

    def verify(self) -> None:
        if threading.get_ident() != self._thread:
            raise NamespaceSafetyError(f"netlink socket for {self.name} used from another thread")
        got = socket_netns_ino(self._ipr.fileno())
        if got != self._ino or got == host_netns_ino():
            raise NamespaceSafetyError(
                f"netlink socket for {self.name} is in namespace inode {got}, "
                f"expected {self._ino} (host is {host_netns_ino()}); refusing to change anything"
            )

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._ipr, attr)
        if attr in ("link", "addr", "route", "neigh", "rule") and callable(target):
            def guarded(command: str = "dump", *a: Any, **kw: Any) -> Any:
                if command in _CHANGES:
                    self.verify()
                return target(command, *a, **kw)
            return guarded
        return target


def _setns_fd(fd: int, nstype: int = CLONE_NEWNET) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def _run_in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a fresh OS thread (never reused, so no namespace leaks)."""
    fut: Future[T] = Future()

    def body() -> None:
        try:
            fut.set_result(fn())
        except BaseException as e:  # noqa: BLE001 - re-raised in caller
            fut.set_exception(e)

    t = threading.Thread(target=body, name="netns-worker", daemon=True)
    t.start()
    t.join()
    return fut.result()


def _with_route(name: str, fn: Callable[[NsRoute], T]) -> T:
    """In the current (already switched) thread: open, verify, run, close."""
    ino = netns_ino(name)
    with IPRoute() as ipr:
        return fn(NsRoute(name, ipr, ino))


def in_netns(name: str, fn: Callable[[NsRoute], T]) -> T:
    """Call fn(route) with a verified netlink socket inside namespace `name`."""

    def body() -> T:
        fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns_fd(fd)
        finally:
            os.close(fd)
        return _with_route(name, fn)

    return _run_in_thread(body)


def _ensure_netns_dir() -> None:
    """Make /run/netns a shared mount point, as `ip netns add` does."""
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    if _libc.mount(b"", str(NETNS_DIR).encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    _check(_libc.mount(str(NETNS_DIR).encode(), str(NETNS_DIR).encode(), b"none",
                       MS_BIND | MS_REC, None), "bind /run/netns")
    _check(_libc.mount(b"", str(NETNS_DIR).encode(), b"none", MS_SHARED | MS_REC, None),
           "share /run/netns")


_dir_ready = False


@overload
def create_netns(name: str) -> None: ...


@overload
def create_netns(name: str, setup: Callable[[NsRoute], T]) -> T: ...


def create_netns(name: str, setup: Callable[[NsRoute], T] | None = None) -> T | None:
    """Create namespace `name` (fails if it exists) and run setup inside it.

    The namespace is made by unshare() in a fresh thread and bind-mounted to
    /run/netns/NAME so `ip netns exec NAME` works; setup runs in that thread.
    """
    global _dir_ready
    if not _dir_ready:
        _ensure_netns_dir()
        _dir_ready = True
    path = netns_path(name)

    def body() -> T | None:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
        os.close(fd)
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
            _check(_libc.mount(src, str(path).encode(), b"none", MS_BIND, None),
                   f"bind {path}")
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        if setup is None:
            return None
        return _with_route(name, setup)

    return _run_in_thread(body)


def remove_netns(name: str) -> bool:
    """Unmount and unlink /run/netns/NAME; True if it existed."""
    path = netns_path(name)
    ret = _libc.umount2(str(path).encode(), MNT_DETACH)
    if ret != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
        _check(ret, f"umount {path}")
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def pids_in_netns(names: Iterable[str]) -> dict[int, str]:
    """Processes whose network namespace is one of `names` (pid -> name)."""
    by_ino: dict[int, str] = {}
    for n in names:
        with contextlib.suppress(OSError):
            by_ino[netns_ino(n)] = n
    found: dict[int, str] = {}
    if not by_ino:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        if ino in by_ino:
            found[int(entry)] = by_ino[ino]
    return found


def write_sysctl(key: str, value: str | int) -> None:
    """Set a net sysctl for the calling thread's namespace (use inside setup)."""
    Path("/proc/sys", *key.split(".")).write_text(f"{value}\n")


def read_sysctl(key: str) -> str:
    return Path("/proc/sys", *key.split(".")).read_text().strip()
