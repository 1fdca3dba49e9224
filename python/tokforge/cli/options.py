"""The options several commands share, declared once, and the one-line error report.

Every command module has ``register(subparsers: Subparsers) -> None``, which adds its
sub-commands and points each one's ``func`` at a handler returning the exit code."""

from __future__ import annotations

import argparse
import sys
from typing import TypeAlias

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


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, metavar="N", help="counting threads (default: all)")


def add_quiet(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help=help)


def fail(e: BaseException, command: str = "") -> int:
    """Prints ``tokforge [COMMAND]: error: <the first line of e>`` to stderr and returns 1."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    print(f"tokforge{' ' + command if command else ''}: error: {msg}", file=sys.stderr)
    return 1
