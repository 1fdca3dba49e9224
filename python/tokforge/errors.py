"""The exceptions tokforge raises. Every one is a :class:`TokforgeError`, which is a
:class:`ValueError`; the more specific ones also subclass the built-in a caller would expect
(:class:`KeyError` for unknown ids and tokens, :class:`OSError` for file-system failures)."""

from __future__ import annotations


class TokforgeError(ValueError):
    """Base class of every tokforge error."""


class UnknownTokenError(TokforgeError, KeyError):
    """An id that is not in the vocabulary, or bytes that are not a single token."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DisallowedSpecialTokenError(TokforgeError):
    """Text contains a special token that the call does not allow (tiktoken raises ValueError
    here with the same message)."""

    def __init__(self, token: str) -> None:
        self.token = token
        super().__init__(
            f"Encountered text corresponding to disallowed special token {token!r}.\n"
            "If you want this text to be encoded as a special token, "
            f"pass it to `allowed_special`, e.g. `allowed_special={{{token!r}, ...}}`.\n"
            "If you want this text to be encoded as normal text, disable the check for this "
            f"token by passing `disallowed_special=(enc.special_tokens_set - {{{token!r}}})`.\n"
            "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.token,))


class PatternError(TokforgeError):
    """A pretokenizer pattern that does not compile, an unknown preset, or a regex that failed
    on its input (for instance by exceeding its backtracking limit)."""


class PretokenizerError(TokforgeError):
    """A custom pretokenizer (a Python callable) misbehaved."""


class VocabError(TokforgeError):
    """A vocabulary that is inconsistent: duplicate tokens or ids, empty tokens, ..."""


class VocabFileError(TokforgeError):
    """A vocabulary or tokenizer file that cannot be parsed; the message names file and line."""


class TokforgeIOError(TokforgeError, OSError):
    """Reading or writing a file failed; the message names the path."""
