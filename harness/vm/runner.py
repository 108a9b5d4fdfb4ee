"""Boot Debian's kernel under qemu and run one command in the host's own userland.

The guest sees the host's root read-only over 9p (with a tmpfs overlay), so
it runs the same Python, packages and checkout.  It has no network device to
the outside (``-nic none``).  Output streams from the serial console to our
stdout; the command's exit status comes back through a marker line carrying a
per-run nonce.  The VM is always killed by its pid: at the hard deadline, on
SIGINT/SIGTERM/SIGHUP, and (PR_SET_PDEATHSIG) if this process dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.vm.guest import calibration
from harness.vm.initramfs import ensure_initramfs
from harness.vm.kernel import Kernel, KernelError, ensure_kernel

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "vm"
QEMU = "qemu-system-x86_64"
GUEST_PY = Path(__file__).resolve().with_name("guest.py")

RC_TIMEOUT = 124  # as timeout(1)
RC_INFRA = 125  # the VM failed before or around the command (no exit marker)

INIT_MARK = b"FTH-VM: init started"
_PASS_ENV = re.compile(
    r"^(PATH|HOME|LANG|LC_[A-Z]+|TZ|PYENV_\w+|VIRTUAL_ENV|PYTHONPATH|PYTHONHASHSEED"
    r"|PYTEST_ADDOPTS|HARNESS_\w+)$"
)
_STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(msg: str) -> None:
    """Runner messages share stdout with the guest stream, so ordering in CI logs holds."""
    sys.stdout.write(f"FTH-VM: {msg}\n")
    sys.stdout.flush()


@dataclass
class VMConfig:
    """What to run in the VM and how."""

    argv: list[str]
    cwd: Path = field(default_factory=Path.cwd)
    timeout: float = 1800.0  # hard deadline for the whole VM, boot included
    accel: str = "auto"  # auto | kvm | tcg
    memory_mb: int = 2048
    cpus: int = 2
    kvm_probe_timeout: float = 12.0  # a KVM boot shows the init marker in ~2 s
    calibrate: bool = True
    verbose: bool = False
    # qemu's niceness: `make test` runs the VM beside the host suite, whose
    # timing tests (100 ms grids, 1 s slacks) must not wait for the emulator;
    # the guest's own slacks are scaled by its measured slowness instead
    nice: int = 0
    artifacts: Path = REPO / "artifacts" / "vm"  # host side; writable share
    guest_artifacts: Path = REPO / "artifacts"  # where the guest sees it


@dataclass
class VMResult:
    rc: int
    accel: str = ""
    qemu_pids: list[int] = field(default_factory=list)
    boot_s: float | None = None  # qemu start -> command start
    command_s: float | None = None  # command start -> exit marker
    scale: str | None = None
    timed_out: bool = False


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    """Serialise kernel download and initramfs builds between concurrent runners."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def prepare() -> tuple[Kernel, Path]:
    """Kernel and initramfs, fetched/built only when not cached."""
    if shutil.which(QEMU) is None:
        raise KernelError(f"{QEMU} not found: install qemu-system-x86 (`make vm-deps`)")
    with _cache_lock():
        k = ensure_kernel(CACHE, log=log)
        ird = ensure_initramfs(k, CACHE)
    if ird.missing:
        log(f"kernel {k.release} lacks modules (skipped): {' '.join(ird.missing)}")
    return k, ird.path


@functools.cache
def host_calibration() -> dict[str, float]:
    """Host side of the scale factors, measured once per runner process."""
    return calibration()


# --- acceleration -------------------------------------------------------------


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _accel_cache() -> Path:
    return CACHE / "accel.json"


def remembered_accel() -> str | None:
    """The answer of an earlier KVM probe during this host boot, if any."""
    try:
        d = json.loads(_accel_cache().read_text())
    except (OSError, ValueError):
        return None
    return d.get("accel") if d.get("boot_id") == _boot_id() else None


def _remember_accel(accel: str, why: str) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = _accel_cache().with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"boot_id": _boot_id(), "accel": accel, "why": why}))
    tmp.rename(_accel_cache())


def _kvm_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


# --- qemu ---------------------------------------------------------------------


def _pdeathsig() -> None:
    """In the child: die with the runner even if it is SIGKILLed."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _qemu_preexec(nice: int) -> Callable[[], None]:
    """In the child: the death signal, and qemu's niceness (the runner keeps its own,
    so the host side of the time scale is measured at normal priority)."""
    def setup() -> None:
        _pdeathsig()
        if nice:
            os.nice(nice)
    return setup


def qemu_argv(cfg: VMConfig, kernel: Kernel, initrd: Path, job: Path, accel: str) -> list[str]:
    cpu = "host" if accel == "kvm" else "max"
    append = "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init"
    return [
        QEMU,
        "-nodefaults", "-no-user-config", "-no-reboot",
        "-machine", "q35", "-accel", accel, "-cpu", cpu,
        "-smp", str(cfg.cpus), "-m", str(cfg.memory_mb),
        "-display", "none", "-monitor", "none",
        "-nic", "none",  # no network device to the outside, ever
        "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
        "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd), "-append", append,
        "-device", "virtio-rng-pci",
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                   "multidevs=remap",
        "-virtfs", f"local,path={job},mount_tag=fthjob,security_model=none,readonly=on",
        "-virtfs", f"local,path={cfg.artifacts},mount_tag=fthart,security_model=none",
    ]  # fmt: skip


def _guest_env(cfg: VMConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if _PASS_ENV.match(k)}
    path = env.get("PATH", "")
    for p in _STD_PATH.split(":"):
        if p not in path.split(":"):
            path = f"{path}:{p}" if path else p
    env.update(
        PATH=path,
        HOME=env.get("HOME", "/root"),
        TERM="dumb",
        PYTHONUNBUFFERED="1",
        HARNESS_IN_VM="1",
        HARNESS_VM_ARTIFACTS=str(cfg.guest_artifacts),
    )
    return env


def _write_job(cfg: VMConfig, kernel: Kernel, job: Path, nonce: str) -> None:
    spec = {
        "nonce": nonce,
        "argv": cfg.argv,
        "cwd": str(cfg.cwd.resolve()),
        "env": _guest_env(cfg),
        "host_calibration": host_calibration() if cfg.calibrate else None,
    }
    (job / "job.json").write_text(json.dumps(spec, indent=1))
    shell = {
        "FTH_NONCE": nonce,
        "FTH_PYTHON": sys.executable,
        "FTH_GUEST": str(GUEST_PY),
        "FTH_KREL": kernel.release,
        "FTH_MODSRC": str(kernel.moddir.resolve()),
        "FTH_ARTIFACTS": str(cfg.guest_artifacts),
    }
    (job / "env.sh").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in shell.items()))


@dataclass
class _Boot:
    """State of one qemu process's console stream."""

    nonce: str
    verbose: bool
    t0: float = field(default_factory=time.monotonic)
    buf: bytes = b""
    init_seen: float | None = None
    started: float | None = None
    exit_rc: int | None = None
    ended: float | None = None
    initfail: str | None = None
    scale: str | None = None
    bootlog: deque[bytes] = field(default_factory=lambda: deque(maxlen=300))

    @property
    def exit_mark(self) -> bytes:
        return f"FTH-VM-EXIT-{self.nonce}:".encode()

    def _out(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()

    def _line(self, line: bytes) -> None:
        i = line.find(self.exit_mark)
        if i >= 0 and self.exit_rc is None:
            if i > 0:
                self._out(line[:i] + b"\n")
            m = re.match(rb"(\d+)", line[i + len(self.exit_mark) :])
            self.exit_rc = int(m.group(1)) if m else RC_INFRA
            self.ended = time.monotonic()
            return
        if self.started is not None and self.exit_rc is None:
            self._out(line + b"\n")
            return
        self.bootlog.append(line)
        if self.verbose:
            self._out(line + b"\n")
        if line.startswith(INIT_MARK) and self.init_seen is None:
            self.init_seen = time.monotonic()
            log(f"guest init started {self.init_seen - self.t0:.1f} s after qemu start")
        elif line.startswith(b"FTH-VM-INITFAIL:"):
            self.initfail = line.decode(errors="replace")
        elif line.startswith(b"FTH-VM-SCALE:"):
            self.scale = line.split(b":", 1)[1].decode(errors="replace").strip()
            log(f"time scale {self.scale}")
        elif line.strip() == f"FTH-VM-START-{self.nonce}".encode():
            self.started = time.monotonic()
            log(f"command started {self.started - self.t0:.1f} s after qemu start")

    def feed(self, data: bytes) -> None:
        """Split the console stream into lines; hold back only what may be a marker."""
        self.buf += data.replace(b"\r\n", b"\n")
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self._line(line)
        if self.started is None or self.exit_rc is not None or not self.buf:
            return
        mark = self.exit_mark
        if mark in self.buf:
            return  # complete marker, wait for its end of line
        keep = 0
        for k in range(min(len(mark), len(self.buf)), 0, -1):
            if self.buf.endswith(mark[:k]):
                keep = k
                break
        cut = len(self.buf) - keep
        if cut:
            self._out(self.buf[:cut])  # partial line (e.g. pytest's progress dots)
            self.buf = self.buf[cut:]

    def finish(self) -> None:
        if self.buf:
            self._line(self.buf)
            self.buf = b""


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()  # SIGKILL to this pid only
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _pump(
    proc: subprocess.Popen[bytes], nonce: str, cfg: VMConfig, deadline: float,
    init_timeout: float | None,
) -> tuple[_Boot, str]:
    """Stream qemu's console until it exits or a limit is reached."""
    st = _Boot(nonce, cfg.verbose)
    reason = "exited"
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    while True:
        now = time.monotonic()
        limit = deadline
        if init_timeout is not None and st.init_seen is None:
            limit = min(limit, st.t0 + init_timeout)
        if st.ended is not None:
            limit = min(limit, st.ended + 30)  # poweroff grace
        if now >= limit:
            reason = "deadline" if limit == deadline else "no-init"
            if st.exit_rc is not None:
                reason = "exited"
                log(f"guest did not power off after the command; killing qemu pid {proc.pid}")
            break
        ready, _, _ = select.select([fd], [], [], min(limit - now, 1.0))
        if ready:
            data = os.read(fd, 65536)
            if not data:
                break
            st.feed(data)
    st.finish()
    return st, reason


def _boot(
    argv: list[str], nonce: str, cfg: VMConfig, deadline: float, init_timeout: float | None,
    result: VMResult,
) -> tuple[_Boot, str]:
    """Run one qemu until it exits; return its console state and why it ended.

    The reason is "exited", "deadline" or "no-init" (init marker missing
    within init_timeout: the KVM probe).
    """
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf,
            preexec_fn=_qemu_preexec(cfg.nice), start_new_session=True,
        )  # fmt: skip
        result.qemu_pids.append(proc.pid)
        try:
            st, reason = _pump(proc, nonce, cfg, deadline, init_timeout)
            exited = None  # how qemu ended by itself, when that is the story
            if st.exit_rc is None and reason == "exited":
                with contextlib.suppress(subprocess.TimeoutExpired):
                    exited = proc.wait(timeout=5)  # its console closed: it is on its way out
        finally:
            _kill(proc)
        errf.seek(0)
        err = errf.read().decode(errors="replace").strip()
    if err and (st.exit_rc is None or cfg.verbose):
        log(f"qemu stderr: {err[-2000:]}")
    if st.exit_rc is None and exited is not None:
        how = f"killed by signal {-exited}" if exited < 0 else f"exit status {exited}"
        log(f"qemu pid {proc.pid} ended by itself before the command's exit marker ({how})")
    return st, reason


def run_vm(cfg: VMConfig) -> VMResult:
    """Boot, run cfg.argv in the guest, and return its exit status (see VMResult)."""
    result = VMResult(rc=RC_INFRA)
    t_start = time.monotonic()
    deadline = t_start + cfg.timeout
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def _on_signal(signum: int, _frame: object) -> None:
        raise _Interrupted(signum)

    for s in old:
        signal.signal(s, _on_signal)
    try:
        try:
            kernel, initrd = prepare()
        except KernelError as e:
            log(f"cannot prepare the VM: {e}")
            return result
        cfg.artifacts.mkdir(parents=True, exist_ok=True)
        _reap_job_dirs()
        with tempfile.TemporaryDirectory(prefix=f"fth-vm-job-{os.getpid()}-") as tmp:
            job = Path(tmp)
            nonce = secrets.token_hex(8)
            _write_job(cfg, kernel, job, nonce)
            accel = cfg.accel
            if accel == "auto":
                accel = remembered_accel() or ("kvm?" if _kvm_usable() else "tcg")
            while True:
                probing = accel == "kvm?"
                a = "kvm" if probing else accel
                result.accel = a
                log(f"booting {kernel.release} under qemu ({a}), timeout {cfg.timeout:.0f} s")
                st, reason = _boot(
                    qemu_argv(cfg, kernel, initrd, job, a), nonce, cfg, deadline,
                    cfg.kvm_probe_timeout if probing else None, result,
                )  # fmt: skip
                if probing and st.init_seen is None and reason != "deadline":
                    why = (f"no boot progress within {cfg.kvm_probe_timeout:.0f} s"
                           if reason == "no-init" else "qemu exited before init")
                    log(f"KVM unusable ({why}); falling back to TCG emulation")
                    _remember_accel("tcg", why)
                    accel = "tcg"
                    continue
                if probing and st.init_seen is not None:
                    _remember_accel("kvm", "init marker seen")
                break
        result.scale = st.scale
        if st.started is not None:
            result.boot_s = st.started - st.t0
        if st.exit_rc is not None and st.started is not None:
            result.command_s = (st.ended or time.monotonic()) - st.started
        if reason == "deadline":
            result.timed_out = True
            result.rc = RC_TIMEOUT
            where = "the command" if st.started is not None else "boot"
            log(f"TIMEOUT: hard timeout of {cfg.timeout:.0f} s reached during {where}; "
                f"killed qemu pid {result.qemu_pids[-1]}")
            if st.started is None:
                _dump_bootlog(st)
        elif st.exit_rc is not None:
            result.rc = st.exit_rc
        else:
            result.rc = RC_INFRA
            log(st.initfail or "guest ended without reporting an exit status")
            _dump_bootlog(st)
        return result
    except KeyboardInterrupt:
        result.rc = 130
        log(f"interrupted (SIGINT); qemu pid(s) {result.qemu_pids} killed")
        return result
    except _Interrupted as e:
        result.rc = 128 + e.signum
        log(f"interrupted ({e}); qemu pid(s) {result.qemu_pids} killed")
        return result
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        el = time.monotonic() - t_start
        pids = ",".join(map(str, result.qemu_pids)) or "-"
        parts = [f"accel {result.accel or '-'}", f"qemu pids {pids}", f"total {el:.1f} s"]
        if result.boot_s is not None:
            parts.append(f"boot-to-command {result.boot_s:.1f} s")
        if result.command_s is not None:
            parts.append(f"command {result.command_s:.1f} s")
        if result.scale:
            parts.append(f"time scale {result.scale.split()[0]}")
        log(f"summary: exit {result.rc}; " + ", ".join(parts))


def _reap_job_dirs() -> None:
    """Remove job directories of runners that were SIGKILLed (their pid is in the name)."""
    for d in Path(tempfile.gettempdir()).glob("fth-vm-job-*-*"):
        pid = d.name.split("-")[3]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def _dump_bootlog(st: _Boot) -> None:
    if st.verbose or not st.bootlog:
        return
    log("last console lines before the command started:")
    for line in st.bootlog:
        sys.stdout.buffer.write(b"  | " + line + b"\n")
    sys.stdout.flush()
