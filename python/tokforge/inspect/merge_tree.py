"""How a token was built from bytes, merge by merge: :func:`lineage` and its tree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UnknownTokenError
from ..protocol import TokenizerLike as Tokenizer
from . import viz

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class LineageNode:
    """A token in a lineage tree: a leaf (a single byte, a base character, a special token),
    a merge of two ``parts``, or, when ``merged`` is false, a token that no merge builds:
    ``parts`` are where BPE on its bytes stops."""

    id: int
    bytes: bytes
    parts: tuple[LineageNode, ...] = ()
    merged: bool = True

    @property
    def is_leaf(self) -> bool:
        return not self.parts

    @property
    def label(self) -> str:
        """``[low]``: the printable form in brackets."""
        return f"[{viz.printable(self.bytes)}]"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "hex": self.bytes.hex(), "text": self.label[1:-1]}
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
            if not self.merged:
                out["merged"] = False
        return out


@dataclass(frozen=True)
class Merge:
    """One step of a lineage: ``left`` and ``right`` joined into ``result``."""

    left: LineageNode
    right: LineageNode
    result: LineageNode

    def __str__(self) -> str:
        return f"{self.left.label}{self.right.label} -> {self.result.label} {self.result.id}"


class Lineage:
    """How a token was built from bytes: a tree of :class:`LineageNode` and the merges in the
    order they happen (:meth:`steps`), as text (``[lo][w] -> [low] 257``) or a tree."""

    def __init__(
        self, root: LineageNode, tokenizer_name: str = "", source: str = "", kind: str = ""
    ) -> None:
        self.root = root
        self.tokenizer_name = tokenizer_name
        #: The token's kind (:meth:`Tokenizer.token_kind`).
        self.kind = kind or "ordinary"
        #: ``"merges"`` (the tokenizer's recorded merges) or ``"ranks"`` (recovered with
        #: :meth:`Tokenizer.merge_parts`).
        self.source = source

    def _nodes(self) -> Iterator[LineageNode]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.parts))

    def steps(self) -> list[Merge]:
        """The merges, each once, in the order BPE makes them (by id: a merge's result always
        has a larger id than its parts)."""
        seen: dict[int, Merge] = {}
        for node in self._nodes():
            if node.merged and len(node.parts) == 2 and node.id not in seen:
                seen[node.id] = Merge(node.parts[0], node.parts[1], node)
        return [seen[k] for k in sorted(seen)]

    def leaves(self) -> list[LineageNode]:
        """The leaves left to right: single bytes (or base characters); their bytes concatenate
        to the token's."""
        return [n for n in self._nodes() if n.is_leaf]

    @property
    def depth(self) -> int:
        """Merges on the longest path from a leaf to the token."""

        def d(n: LineageNode) -> int:
            return 0 if n.is_leaf else 1 + max(d(p) for p in n.parts)

        return d(self.root)

    def to_text(self) -> str:
        """One line per merge, ``[lo][w] -> [low] 257``, in merge order; a token that no merge
        builds ends with ``[ab][c][d] -/-> [abcd] 259 (unreachable by merges)``."""
        lines = [str(m) for m in self.steps()]
        for node in self._nodes():
            if not node.merged:
                joined = "".join(p.label for p in node.parts)
                lines.append(f"{joined} -/-> {node.label} {node.id} (unreachable by merges)")
        if not lines:
            what = "a single byte" if len(self.root.bytes) == 1 else f"a {self.kind} token"
            lines.append(f"{self.root.label} {self.root.id} (no merges: {what})")
        return "\n".join(lines)

    def to_tree(self) -> str:
        """The tree: the token at the top, each merge's two parts below it, single bytes at
        the leaves (an example is in :func:`lineage`)."""
        lines: list[str] = []

        def walk(node: LineageNode, prefix: str, last: bool, top: bool) -> None:
            note = "  (no merge joins these parts)" if not node.merged else ""
            head = "" if top else prefix + ("└── " if last else "├── ")
            lines.append(f"{head}{node.label} {node.id}{note}")
            child_prefix = "" if top else prefix + ("    " if last else "│   ")
            for i, part in enumerate(node.parts):
                walk(part, child_prefix, i == len(node.parts) - 1, False)

        walk(self.root, "", True, True)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer_name,
            "source": self.source,
            "token": self.root.id,
            "steps": [[m.left.id, m.right.id, m.result.id] for m in self.steps()],
            "tree": self.root.to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def _repr_html_(self) -> str:
        import html

        return (
            '<pre style="font-family: ui-monospace, monospace; line-height: 1.3">'
            f"{html.escape(self.to_tree())}</pre>"
        )

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<Lineage of {self.root.label} {self.root.id}: {len(self.steps())} merges>"


def _resolve_token(tok: Tokenizer, token: int | bytes | str) -> int:
    if isinstance(token, bool):
        raise TypeError("a token is an id (int), bytes or str, not bool")
    if isinstance(token, int):
        tok.decode_single_token_bytes(token)  # raises UnknownTokenError for a bad id
        return token
    if isinstance(token, (bytes, bytearray, str)):
        try:
            return tok.encode_single_token(token)
        except KeyError:
            data = token.encode("utf-8") if isinstance(token, str) else bytes(token)
            ids = tok.encode(data.decode("utf-8", errors="replace"), disallowed_special=())
            raise UnknownTokenError(
                f"{token!r} is not a single token of {tok.name or 'this tokenizer'} "
                f"(it encodes as {ids}); give one token"
            ) from None
    raise TypeError(f"a token is an id (int), bytes or str, not {type(token).__name__}")


class PartsFinder:
    """The parts each token was made from: the recorded merges of a trained vocabulary, else
    :meth:`Tokenizer.merge_parts` (BPE on the token's bytes with only lower-ranked merges)."""

    def __init__(self, tok: Tokenizer) -> None:
        self.tok = tok
        self.merges = tok.merges
        self.source = "merges" if self.merges else "ranks"

    def parts(self, token: int) -> list[int]:
        merges = self.merges
        if merges and 256 <= token < 256 + len(merges):
            return list(merges[token - 256])
        if merges and token < 256:
            return [token]
        if self.tok.token_kind(token) != "ordinary":
            return [token]
        return self.tok.merge_parts(token)


def lineage(tok: Tokenizer, token: int | bytes | str) -> Lineage:
    """How ``token`` (an id, its bytes, or its text) was built from bytes, merge by merge.

    For a trained vocabulary the recorded merges are followed; for a rank file (cl100k,
    o200k: no merges published) each token's two parts are recovered from the ranks
    (:meth:`Tokenizer.merge_parts`). The leaves are single bytes (or, in a vocabulary with a
    character alphabet, base characters).

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace")
    >>> print(lineage(tok, 257).to_tree())
    [low] 257
    ├── [lo] 256
    │   ├── [l] 108
    │   └── [o] 111
    └── [w] 119
    """
    finder = PartsFinder(tok)
    cache: dict[int, LineageNode] = {}

    def build(t: int) -> LineageNode:
        if t in cache:
            return cache[t]
        data = tok.decode_single_token_bytes(t)
        parts = finder.parts(t)
        if parts == [t]:
            node = LineageNode(t, data)
        else:
            node = LineageNode(t, data, tuple(build(p) for p in parts), merged=len(parts) == 2)
        cache[t] = node
        return node

    t = _resolve_token(tok, token)
    return Lineage(build(t), tok.name, finder.source, tok.token_kind(t))
