"""CLI: ``python -m harness.vm {run,pytest,probe-bonding,prepare}``.

``run -- CMD...`` boots the VM and runs CMD in the checkout; the exit status
is CMD's (124 on the hard timeout, 125 when the VM failed around it).
``pytest -- ARGS`` runs the bond-marked tests there (``make test-vm``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

PYTEST_ARGS = ["-m", "needs_bonding or needs_full_kernel", "-p", "no:cacheprovider"]


def _vm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float,
                   default=float(os.environ.get("HARNESS_VM_TIMEOUT", 1800)),
                   help="hard deadline in seconds for the whole VM, boot included (default 1800)")
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"],
                   default=os.environ.get("HARNESS_VM_ACCEL", "auto"),
                   help="auto: KVM if a guest boots under it within --kvm-probe-timeout, else TCG")
    p.add_argument("--kvm-probe-timeout", type=float, default=12.0)
    p.add_argument("--memory", type=int, default=2048, help="guest RAM in MiB")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--no-calibrate", action="store_true",
                   help="skip the time-scale calibration (HARNESS_TIME_SCALE=1.0)")
    p.add_argument("--artifacts", type=Path, default=None,
                   help="host directory the guest writes artifacts to (default artifacts/vm)")
    p.add_argument("--nice", type=int, default=0,
                   help="run qemu at this niceness (make test: 10, beside the host suite)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the whole boot console")
    p.add_argument("cmd", nargs=argparse.REMAINDER)


def _probe_bonding() -> int:
    """0 if this kernel can create a bond, else 1 - also when it cannot be probed
    here (`make test-vm-auto` then falls back to the VM)."""
    from harness import builder, hostcheck

    why_not = hostcheck.why_cannot_run()
    if why_not is not None:
        print(f"cannot probe: {why_not}")
        return 1
    try:
        probe = builder.probe_bonding()
    except OSError as e:
        print(f"cannot probe: {e}")
        return 1
    print(probe.why)
    return 0 if probe.ok else 1


def host_collected(args: list[str]) -> list[str]:
    """Node ids of the tests the guest will run, collected here on the host.

    Collection imports every test module: ~20 s of the guest's emulated time
    against ~1 s here. Given the node ids, the guest imports only the modules
    that hold them. Empty when collection fails or selects nothing; the guest
    then collects by itself and reports exactly as it would have.
    """
    # -q lists node ids one a line; a -v of the user's would turn that into a tree
    quiet = [a for a in args if not re.fullmatch(r"-[vq]+|--verbose|--quiet", a)]
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *PYTEST_ARGS, *quiet],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if res.returncode != 0:
        return []
    ids = []
    for line in res.stdout.splitlines():
        if not line.strip():
            break  # the summary follows the list
        if "::" in line:
            ids.append(line)
    return ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.vm", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="action", required=True)
    _vm_options(sub.add_parser("run", help="run a command in the VM"))
    _vm_options(sub.add_parser(
        "pytest", help="run the needs_bonding and needs_full_kernel tests in the VM"))
    sub.add_parser("probe-bonding", help="exit 0 if this kernel can create a bond, else 1")
    sub.add_parser("prepare", help="fetch the kernel and build the initramfs (cached)")
    a = ap.parse_args(argv)

    if a.action == "probe-bonding":
        return _probe_bonding()

    from harness.vm import runner

    if a.action == "prepare":
        from harness.vm.kernel import KernelError

        try:
            k, initrd = runner.prepare()
        except KernelError as e:
            print(f"FTH-VM: cannot prepare the VM: {e}")
            return runner.RC_INFRA
        print(f"kernel {k.vmlinuz}\ninitramfs {initrd}")
        return 0

    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if a.action == "pytest":
        ids = host_collected(cmd)
        runner.log(f"{len(ids)} tests collected on the host" if ids else
                   "host collection selected nothing; the guest collects")
        cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *cmd, *ids]
    elif not cmd:
        ap.error("run: give a command after --")
    cfg = runner.VMConfig(
        argv=cmd, timeout=a.timeout, accel=a.accel, kvm_probe_timeout=a.kvm_probe_timeout,
        memory_mb=a.memory, cpus=a.cpus, calibrate=not a.no_calibrate, verbose=a.verbose,
        nice=a.nice,
    )  # fmt: skip
    if a.artifacts is not None:
        cfg.artifacts = a.artifacts.resolve()
    return runner.run_vm(cfg).rc


if __name__ == "__main__":
    sys.exit(main())
