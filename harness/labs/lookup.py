"""Finding a lab for a command, and how lab commands fail: an unknown lab is
bad input (UsageError, exit 2); a lab that cannot do what is asked right now
(its supervisor died) is one line and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from harness.cmdline import UsageError
from harness.labs.state import LabError, LabFiles, LabUnavailable, find_lab

Command = Callable[[argparse.Namespace], int]


def lab_by_name(name: str) -> LabFiles:
    try:
        return find_lab(name)
    except LabError as e:
        raise UsageError(str(e)) from None


def live(files: LabFiles) -> LabFiles:
    if not files.alive():
        raise LabUnavailable(f"lab {files.name} is dead (its supervisor is gone); "
                             f"`harness save {files.name} DIR` keeps its evidence, "
                             f"`harness down {files.name}` removes it")
    return files


def run_command(fn: Command) -> Command:
    """Wrap a command: LabUnavailable -> one line, exit 1 (bad input is the
    caller's UsageError, exit 2)."""
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except LabUnavailable as e:
            print(f"harness {args.cmd}: {e}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            # the reader went away (`| head`): not an error; keep the exit quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    return wrapped
