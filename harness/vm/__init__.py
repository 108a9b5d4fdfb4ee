"""Run tests in a throwaway qemu VM booting Debian's stock kernel (real bonding, netem).

See runner.py; CLI: `python -m harness.vm --help`.
"""
