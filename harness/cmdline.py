"""What every `harness` subcommand shares: the one-line error for bad input,
and the parsers of options that several commands take.

Subcommands live in their own modules (harness.cli composes them); they
import this, never harness.cli, so nothing imports upwards.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from harness.ctdb_import import parse_bond_spec
from harness.topology import Bond


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (what, where, how to fix) and
    exit 2, not the usage block above argparse's message; subcommands' parsers
    inherit it (add_subparsers takes the parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def seconds_option(text: str | None, option: str) -> float | None:
    """`--for 10` and friends: a positive number of seconds, or None if not given."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{option} {text!r}: give a number of seconds above 0, e.g. "
                         f"{option} 10")
    return value


def bonds_from_specs(specs: Sequence[str]) -> dict[str, Bond]:
    """The field's bonds from --bond SPEC options (import-ctdb, up --from-ctdb)."""
    bonds: dict[str, Bond] = {}
    for spec in specs:
        name, bond = parse_bond_spec(spec)
        if name in bonds:
            raise UsageError(f"--bond {name} is given twice; give each bond once")
        bonds[name] = bond
    return bonds


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (argparse prints the message)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be >= 1")
    return v


def probability(text: str) -> float:
    """argparse type: a number from 0 to 1 (argparse prints the message)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v} must be from 0 to 1")
    return v
