"""Guest side of the VM runner: calibrate, export the time scale, run the command.

/init runs this file (stdlib only, started by path with the host's own Python
inside the chroot) as ``python guest.py /run/fth-job/job.json``.  It prints
the start marker the host waits for, runs the command in the checkout with
the job's environment, and exits with the command's status; /init then
prints the exit marker and powers the VM off.  The host imports
``calibrate`` from here too, so both sides time exactly the same work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

CALIBRATION_ROUNDS = 7
CALIBRATION_N = 200_000  # ~15 ms on the host, ~0.3 s under TCG


def _workload(n: int) -> int:
    """Fixed CPU-bound pure-Python loop (interpreter dispatch and int arithmetic)."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x


def calibrate(rounds: int = CALIBRATION_ROUNDS, n: int = CALIBRATION_N) -> float:
    """Median seconds per run of the workload.

    The median, not the minimum: under emulation the spread between rounds is
    large (0.22-0.50 s seen), and a scale that widens slacks should reflect
    the typical speed, not the best moment.
    """
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        _workload(n)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def calibrate_spawn(rounds: int = CALIBRATION_ROUNDS) -> float:
    """Median seconds to fork/exec/wait /bin/true: emulation slows this far more than the loop."""
    subprocess.run(["/bin/true"], check=False)  # warm the page cache
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run(["/bin/true"], check=False)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def calibration() -> dict[str, float]:
    """Both calibrations, as the host sends them in the job."""
    return {"cpu": calibrate(), "spawn": calibrate_spawn()}


def time_scale(guest_s: float, host_s: float) -> float:
    """Slowdown of the guest; never below 1 so a scale only ever widens timing slacks."""
    return max(1.0, round(guest_s / host_s, 2)) if host_s > 0 else 1.0


def _uptime() -> str:
    try:
        with open("/proc/uptime") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def main(argv: list[str]) -> int:
    print(f"FTH-VM: guest.py started at {_uptime()} s uptime", flush=True)
    with open(argv[1]) as f:
        job = json.load(f)
    env = dict(job["env"])
    host = job.get("host_calibration")
    if host:
        guest = calibration()
        scale = time_scale(guest["cpu"], host["cpu"])
        spawn = time_scale(guest["spawn"], host["spawn"])
        print(
            f"FTH-VM-SCALE: {scale} (CPU loop: guest {guest['cpu']:.4f} s, host "
            f"{host['cpu']:.4f} s) exported as HARNESS_TIME_SCALE; process spawn {spawn} "
            f"(guest {guest['spawn'] * 1000:.1f} ms, host {host['spawn'] * 1000:.2f} ms) "
            f"exported as HARNESS_SPAWN_SCALE",
            flush=True,
        )
    else:
        scale = spawn = 1.0
        print("FTH-VM-SCALE: 1.0 (calibration skipped)", flush=True)
    env["HARNESS_TIME_SCALE"] = str(scale)
    env["HARNESS_SPAWN_SCALE"] = str(spawn)
    print(f"FTH-VM-START-{job['nonce']}", flush=True)
    try:
        proc = subprocess.run(
            job["argv"], cwd=job["cwd"], env=env, stdin=subprocess.DEVNULL, check=False
        )
    except OSError as e:
        print(f"FTH-VM: cannot run {job['argv'][0]!r}: {e}", flush=True)
        return 127
    rc = proc.returncode
    if rc < 0:
        print(f"FTH-VM: command killed by {signal.Signals(-rc).name}", flush=True)
        return 128 - rc
    return min(rc, 255)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv))
