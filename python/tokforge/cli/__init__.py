"""The ``tokforge`` command line. Each command group is a module with a ``register(subparsers)``
function (:mod:`.basic`: encode, decode, info; :mod:`.train`: train, count, merge-counts;
:mod:`.dataset`; :mod:`.inspect`; :mod:`.interop`: convert; :mod:`.nn`: run-model;
:mod:`.model`: train-model, eval-model, compare-vocabs; :mod:`tokforge.serve.command`: serve;
:mod:`.bench`; :mod:`.demo`), and :mod:`.options` declares the options they share.
``main(argv)`` returns the exit code (tests call it directly). Errors print one line,
``tokforge: error: ...``, and exit 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import TokforgeError
from ..serve import command as serve
from . import basic, bench, dataset, demo, interop, model, nn, train
from . import inspect as inspect_commands
from .options import fail
from .parser import SuggestingParser

__all__ = ["build_parser", "main"]

# In the order of `tokforge --help`.
_GROUPS = (basic, demo, train, dataset, inspect_commands, bench, nn, model, serve, interop)


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog="tokforge",
        description="Rust-accelerated BPE: encode, decode, train, inspect, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"tokforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (TokforgeError, OSError, UnicodeDecodeError) as e:
        return fail(e)
    except KeyboardInterrupt:
        print("tokforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
