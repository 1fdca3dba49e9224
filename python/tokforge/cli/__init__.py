"""The ``tokforge`` command line. Each command group is a module with a ``register(subparsers)``
function (:mod:`.basic`: encode, decode, info; :mod:`.train`: train, count, merge-counts;
:mod:`.dataset`; :mod:`.inspect`; :mod:`.interop`: convert; :mod:`.nn`: run-model;
:mod:`.model`: train-model, eval-model, compare-vocabs; :mod:`tokforge.serve.command`: serve;
:mod:`.bench`; :mod:`.demo`), and :mod:`.options` declares the options they share.
``main(argv)`` returns the exit code (tests call it directly). Errors print one line,
``tokforge COMMAND: error: ...`` (the form argparse uses for a command's usage errors), and exit
1; no error prints a traceback. A closed stdout (``tokforge info | head -1``) ends the command
quietly with exit code 0."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import TokforgeError
from ..serve import command as serve
from . import basic, bench, dataset, demo, interop, model, nn, train
from . import inspect as inspect_commands
from .options import fail, stdout_closed
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


def _not_utf8(argv: Sequence[str]) -> str | None:
    """The first argument that was not valid UTF-8 on the command line (Python keeps its bytes
    as lone surrogates), shown with the bad bytes escaped."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "surrogateescape") if _escapable(arg) else None
            return repr(raw) if raw is not None else ascii(arg)
    return None


def _escapable(arg: str) -> bool:
    try:
        arg.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bad = _not_utf8(argv)
    if bad is not None:
        return fail(TokforgeError(f"an argument is not valid UTF-8: {bad}"))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    command = str(args.command)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a broken pipe shows here, not at interpreter exit
        return code
    # BrokenPipeError is an OSError: it must be caught first.
    except BrokenPipeError:
        return stdout_closed()
    except KeyboardInterrupt:
        print(f"tokforge {command}: interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        return fail(TokforgeError("the input is nested too deeply (recursion limit)"), command)
    except MemoryError as e:  # NumPy's _ArrayMemoryError too
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return fail(TokforgeError(f"out of memory{': ' + detail if detail else ''}"), command)
    except (TokforgeError, OSError, UnicodeDecodeError) as e:
        return fail(e, command)
