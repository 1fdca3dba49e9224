"""The argument parser of the ``tokforge`` command: argparse's, plus a "did you mean" hint
when a command or an option is mistyped (the closest known name by :mod:`difflib`). The
error still goes to stderr with the usage line, and the exit code stays argparse's 2."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import NoReturn

__all__ = ["SuggestingParser", "suggestion"]

_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)'(?= \(choose from (.*)\))")


def suggestion(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'encode'?"`` for the known name closest to ``word``, or ``""``.

    >>> suggestion("encdoe", ["encode", "decode", "info"])
    "; did you mean 'encode'?"
    >>> suggestion("zzz", ["encode"])
    ''
    """
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--")]


class SuggestingParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors for an unknown command or option end
    with the closest known one (``tokforge encdoe`` -> "did you mean 'encode'?")."""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed: argparse.Namespace
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = _subparsers(self).get(getattr(parsed, "command", None) or "")
            known = _option_strings(command if command is not None else self)
            hint = ""
            for word in extras:
                if word.startswith("--"):
                    hint = suggestion(word.split("=", 1)[0], known)
                    if hint:
                        break
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed

    def error(self, message: str) -> NoReturn:
        m = _INVALID_CHOICE.search(message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            hint = suggestion(m.group(1), choices)
            message = message[: m.end()] + hint + message[m.end() :]
        super().error(message)
