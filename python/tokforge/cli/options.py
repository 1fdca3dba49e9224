"""The options several commands share, declared once, and the one-line error report.

Every command module has ``register(subparsers: Subparsers) -> None``, which adds its
sub-commands and points each one's ``func`` at a handler returning the exit code."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import TypeAlias

from ..errors import TokforgeError
from ..files import read_text
from ..registry import PRESETS

__all__ = [
    "Subparsers",
    "add_errors",
    "add_jsonl_field",
    "add_pattern",
    "add_quiet",
    "add_special",
    "add_threads",
    "add_tokenizer",
    "fail",
    "input_text",
    "positive_float",
    "positive_int",
    "stdout_closed",
]

#: What ``ArgumentParser.add_subparsers()`` returns.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_TOKENIZER_HELP = "cl100k, o200k (bundled) or a tokenizer file (default: cl100k)"


def add_tokenizer(
    p: argparse.ArgumentParser,
    *,
    help: str = _TOKENIZER_HELP,
    default: str | None = "cl100k",
    metavar: str | None = None,
    action: str = "store",
) -> None:
    """``--tokenizer``/``-t``: what :func:`tokforge.resolve_tokenizer` accepts."""
    p.add_argument("--tokenizer", "-t", help=help, default=default, metavar=metavar, action=action)


def add_pattern(p: argparse.ArgumentParser, *, default: str | None, note: str = "") -> None:
    """``--pattern``/``-p``: a pretokenizer preset or a regex."""
    p.add_argument(
        "--pattern",
        "-p",
        default=default,
        metavar="PRESET|REGEX",
        help=f"pretokenizer: {', '.join(PRESETS)}, or a regex (default: cl100k{note})",
    )


def add_special(p: argparse.ArgumentParser, help: str) -> None:
    """``--special TOKEN``, repeatable."""
    p.add_argument("--special", action="append", default=[], metavar="TOKEN", help=help)


def add_jsonl_field(p: argparse.ArgumentParser) -> None:
    """``--jsonl-field``/``--text-field``: the text's key in JSON lines."""
    p.add_argument(
        "--jsonl-field",
        "--text-field",
        dest="text_field",
        default="text",
        metavar="KEY",
        help="JSON key of the text in .jsonl files (default: text)",
    )


def add_errors(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--errors strict|replace`` for invalid UTF-8 in input files."""
    p.add_argument("--errors", choices=["strict", "replace"], default="strict", help=help)


def positive_int(raw: str) -> int:
    """An argparse type: a whole number of at least 1, in ASCII digits."""
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {raw!r}")
    return int(raw)


def positive_float(raw: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(raw) if raw.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number above 0, not {raw!r}")
    return value


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads", type=positive_int, metavar="N", help="counting threads (default: all)"
    )


def add_quiet(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help=help)


def _describe(e: BaseException | str) -> str:
    """The message for ``e``: an OS error from ``open`` names its file, not its errno."""
    if isinstance(e, OSError) and not isinstance(e, TokforgeError) and e.filename is not None:
        name = os.fsdecode(e.filename)
        if isinstance(e, FileNotFoundError):
            return f"no such file: {name}"
        if e.strerror:
            return f"{name}: {e.strerror}"
    if isinstance(e, OSError) and not isinstance(e, TokforgeError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def stdout_closed() -> int:
    """The reader of stdout went away (``tokforge ... | head -1``): send the rest of the output
    nowhere (Python would report the broken pipe again when it flushes stdout at exit) and
    return the exit code 0."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 0


def fail(e: BaseException | str, command: str = "") -> int:
    """Prints ``tokforge COMMAND: error: <the first line of e>`` (``tokforge: error: ...``
    without a command: the form argparse uses for usage errors) to stderr and returns 1; a
    broken pipe on stdout is no error (:func:`stdout_closed`)."""
    if isinstance(e, BrokenPipeError):
        return stdout_closed()
    print(f"tokforge{' ' + command if command else ''}: error: {_describe(e)}", file=sys.stderr)
    return 1


def input_text(args: argparse.Namespace) -> str:
    """The text a command works on: ``--file``, else the ``text`` argument, else standard input."""
    if args.file is not None:
        return read_text(args.file)
    if args.text is not None:
        return str(args.text)
    return sys.stdin.read()
