"""The ``inspect``, ``artifacts``, ``compare`` and ``stats`` sub-commands.

tokforge inspect "How many r's are in strawberry?" -t cl100k      # coloured split
tokforge inspect "strawberry" --format table                      # id, bytes, span
tokforge inspect --lineage " strawberry" --tree                   # how a token was built
tokforge inspect --find berry --limit 10                          # vocabulary queries
tokforge inspect --unreachable -t my-tokenizer.json
tokforge inspect --dump -o vocab.txt                              # [lo][w] -> [low] 257
tokforge artifacts -t cl100k -t o200k "my own string"
tokforge compare "text" -t a.json -t cl100k -t o200k
tokforge stats corpus/*.txt -t cl100k --plot stats.png
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import inspect as ins
from ..encodings import resolve_tokenizer
from ..errors import TokforgeError
from ..files import read_text, refuse_same_file, write_atomic
from ..inspect import compare
from ..inspect.artifacts import artifacts
from ..inspect.stats import corpus_stats, plot_stats, stats_json, stats_text
from ..inspect.viz import printable, table, use_color
from .options import Subparsers, add_tokenizer, input_text

__all__ = ["register"]

_FORMATS = ("terminal", "text", "table", "json", "html")


def _add_common(p: argparse.ArgumentParser, *, many: bool) -> None:
    if many:
        add_tokenizer(
            p,
            action="append",
            default=None,
            metavar="T",
            help="cl100k, o200k or a tokenizer file; repeat for several "
            "(default: cl100k and o200k)",
        )
    else:
        add_tokenizer(p, metavar="T")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="ANSI colours (auto: when writing to a terminal and NO_COLOR is unset)",
    )


def register(subparsers: Subparsers) -> None:
    """Adds ``inspect``, ``artifacts``, ``compare`` and ``stats``."""
    p = subparsers.add_parser(
        "inspect",
        help="see how text is split, how tokens were built, and what a vocabulary holds",
        description=(
            "Without a query option: explain TEXT (each token's id, bytes, printable form and "
            "character span). With one: look into the vocabulary instead."
        ),
    )
    p.add_argument("text", nargs="?", help="text to explain (default: stdin)")
    p.add_argument("--file", "-f", help="explain the content of this UTF-8 file")
    _add_common(p, many=False)
    p.add_argument(
        "--format",
        choices=_FORMATS,
        default=None,
        help="terminal (coloured, the default), text ([a][b]), table, json or html",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lineage", metavar="TOKEN", help="how TOKEN (an id or its text) was built")
    g.add_argument("--find", metavar="QUERY", help="tokens containing QUERY")
    g.add_argument("--longest", type=int, metavar="N", help="the N longest tokens")
    g.add_argument(
        "--scripts",
        nargs="?",
        const="",
        metavar="SCRIPT",
        help="tokens per writing system; with SCRIPT, list that script's tokens",
    )
    g.add_argument("--unreachable", action="store_true", help="tokens no merge can build")
    g.add_argument(
        "--rare",
        type=int,
        metavar="N",
        help="the N rarest merged tokens (glitch-token candidates): by recorded merge counts, "
        "or by usage in --corpus files",
    )
    g.add_argument("--dump", action="store_true", help="the vocabulary, one line per token")
    p.add_argument("--tree", action="store_true", help="--lineage: draw a tree")
    p.add_argument(
        "--as-text", action="store_true", help="--lineage: TOKEN is text even if it is a number"
    )
    p.add_argument("--regex", action="store_true", help="--find: QUERY is a regular expression")
    p.add_argument("--ignore-case", "-i", action="store_true", help="--find: ignore case")
    p.add_argument("--by", choices=["bytes", "chars"], default="bytes", help="--longest: unit")
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="--rare: count usage in FILEs")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N rows (50)")
    p.set_defaults(func=cmd_inspect)

    p = subparsers.add_parser(
        "artifacts",
        help="the classic tokenization surprises (strawberry, digits, case, languages...)",
    )
    p.add_argument("extra", nargs="*", metavar="TEXT", help="your own strings to add")
    _add_common(p, many=True)
    p.add_argument(
        "--only",
        action="append",
        metavar="KEY",
        help="show only these artifacts: strawberry, numbers, acronyms, case, trailing, "
        "indentation, languages",
    )
    p.add_argument("--format", choices=["text", "json", "html"], default="text")
    p.set_defaults(func=cmd_artifacts)

    p = subparsers.add_parser("compare", help="one text split by several tokenizers, aligned")
    p.add_argument("text", nargs="?", help="text to split (default: stdin)")
    p.add_argument("--file", "-f", help="read the text from this UTF-8 file")
    _add_common(p, many=True)
    p.add_argument("--format", choices=["text", "json", "html"], default="text")
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser(
        "stats", help="bytes/characters/words per token, token lengths and vocabulary use"
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="UTF-8 text files")
    _add_common(p, many=True)
    p.add_argument("--plot", metavar="PNG", help="also draw the statistics (needs matplotlib)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_stats)


# ----------------------------------------------------------------------------- helpers


def _emit(args: argparse.Namespace, text: str) -> None:
    if args.output:
        refuse_same_file(args.output, _inputs(args))
        write_atomic(args.output, (text if text.endswith("\n") else text + "\n").encode("utf-8"))
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _inputs(args: argparse.Namespace) -> list[str]:
    """Every file the command reads: an output must not replace one of them."""
    out: list[str] = []
    for key in ("file", "files", "corpus", "tokenizer", "plot"):
        value = getattr(args, key, None)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(str(v) for v in value)
    return out


def _color(args: argparse.Namespace) -> bool:
    if args.output:
        return str(args.color) == "always"
    return use_color(str(args.color))


def _tokenizers(specs: list[str] | None) -> tuple[list[Any], list[str]]:
    specs = specs or ["cl100k", "o200k"]
    toks = [resolve_tokenizer(s) for s in specs]
    names = [t.name or s for t, s in zip(toks, specs, strict=True)]
    if len(set(names)) < len(names):  # two files with the same name: label by spec
        names = [
            f"{n} ({s})" if names.count(n) > 1 else n for n, s in zip(names, specs, strict=True)
        ]
    return toks, names


def _entries_table(rows: list[Any], extra: list[str] | None = None) -> str:
    return table(
        ["id", "token", "bytes", *(extra or [])],
        [[e.id, e.text, len(e.bytes)] for e in rows],
    )


# ----------------------------------------------------------------------------- commands


def cmd_inspect(args: argparse.Namespace) -> int:
    tok = resolve_tokenizer(args.tokenizer)
    fmt = args.format
    as_json = fmt == "json"
    if args.limit is not None and args.limit < 1:
        raise TokforgeError("--limit must be at least 1")

    if args.lineage is not None:
        raw = args.lineage
        token: int | str = int(raw) if raw.strip().isdigit() and not args.as_text else raw
        lin = ins.lineage(tok, token)
        if as_json:
            _emit(args, lin.to_json())
        else:
            _emit(args, lin.to_tree() if args.tree else lin.to_text())
        return 0

    if args.find is not None:
        found = ins.find_tokens(
            tok, args.find, regex=args.regex, ignore_case=args.ignore_case, limit=None
        )
        shown = found[: args.limit]
        if as_json:
            _emit(args, _json([e.to_dict() for e in shown]))
        else:
            what = "a regular expression" if args.regex else "a substring"
            if not found:
                _emit(args, f"No token of {tok.name} has {args.find!r} as {what}.")
                return 0
            more = f" (first {len(shown)})" if len(found) > len(shown) else ""
            matches = "1 token matches" if len(found) == 1 else f"{len(found)} tokens match"
            _emit(args, f"{matches}{more}\n" + _entries_table(shown))
        return 0

    if args.longest is not None:
        rows = ins.longest_tokens(tok, args.longest, by=args.by)
        if as_json:
            _emit(args, _json([e.to_dict() for e in rows]))
        else:
            _emit(args, _entries_table(rows))
        return 0

    if args.scripts is not None:
        return _scripts(args, tok)

    if args.unreachable:
        found_u = ins.unreachable_tokens(tok)
        if as_json:
            return _emit_json(
                args,
                [
                    {"id": u.id, "text": u.text, "parts": u.parts, "whole_piece": u.whole_piece}
                    for u in found_u
                ],
            )
        head = (
            f"{len(found_u)} of {len(tok._mergeable_ranks):,} ordinary tokens are unreachable "
            "by merges (BPE on their bytes stops at the parts shown)"
        )
        rows_u = [
            [
                u.id,
                u.text,
                "".join(f"[{printable(tok.decode_single_token_bytes(p))}]" for p in u.parts),
                "yes" if u.whole_piece else "no",
            ]
            for u in found_u[: args.limit]
        ]
        if not rows_u:
            _emit(args, head.split(" (")[0])
            return 0
        _emit(args, head + "\n" + table(["id", "token", "stops at", "whole piece"], rows_u))
        return 0

    if args.rare is not None:
        corpus = None
        if args.corpus:
            corpus = [read_text(f) for f in args.corpus]
        rare = ins.rarest_merges(tok, args.rare, corpus=corpus)
        if as_json:
            return _emit_json(
                args,
                [
                    {"id": r.id, "text": r.text, "merge_count": r.merge_count, "usage": r.usage}
                    for r in rare
                ],
            )
        cols = ["id", "token"]
        if any(r.merge_count is not None for r in rare):
            cols.append("merge count")
        if corpus is not None:
            cols.append("uses in corpus")
        rows_r = []
        for r in rare:
            row: list[Any] = [r.id, r.text]
            if "merge count" in cols:
                row.append(r.merge_count)
            if corpus is not None:
                row.append(r.usage)
            rows_r.append(row)
        _emit(args, table(cols, rows_r))
        return 0

    if args.dump:
        _emit(args, "\n".join(ins.vocab_dump(tok)))
        return 0

    e = ins.explain(tok, input_text(args))
    if fmt in (None, "terminal"):
        _emit(args, e.to_terminal(color=_color(args)) + "\n\n" + e.summary())
    elif fmt == "text":
        _emit(args, e.to_text())
    elif fmt == "table":
        _emit(args, e.to_table() + "\n" + e.summary())
    elif fmt == "json":
        _emit(args, e.to_json())
    else:
        _emit(args, e.to_html())
    return 0


def _scripts(args: argparse.Namespace, tok: Any) -> int:
    groups = ins.tokens_by_script(tok)
    total = sum(len(v) for v in groups.values())
    if args.scripts:
        wanted = {k.lower(): k for k in groups}
        key = wanted.get(args.scripts.lower())
        if key is None:
            raise TokforgeError(
                f"no tokens of script {args.scripts!r}; scripts here: {', '.join(groups)}"
            )
        entries = [
            ins.VocabEntry(i, tok.decode_single_token_bytes(i)) for i in groups[key][: args.limit]
        ]
        if args.format == "json":
            _emit(args, _json([e.to_dict() for e in entries]))
        else:
            _emit(args, f"{len(groups[key])} {key} tokens\n" + _entries_table(entries))
        return 0
    if args.format == "json":
        _emit(args, _json({k: len(v) for k, v in groups.items()}))
        return 0
    rows = []
    for name, ids in groups.items():
        longest = sorted(ids, key=lambda i: -len(tok.decode_single_token_bytes(i)))[:4]
        examples = " ".join(_short(tok.decode_single_token_bytes(i)) for i in longest)
        rows.append([name, len(ids), f"{100 * len(ids) / total:.1f}%", examples])
    _emit(args, table(["script", "tokens", "share", "longest"], rows, align="<>><"))
    return 0


def _short(data: bytes, width: int = 18) -> str:
    """``[printable]``, cut to ``width`` characters with an ellipsis."""
    text = printable(data)
    return f"[{text[: width - 1]}…]" if len(text) > width else f"[{text}]"


def _emit_json(args: argparse.Namespace, value: Any) -> int:
    _emit(args, _json(value))
    return 0


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False)


def cmd_artifacts(args: argparse.Namespace) -> int:
    if args.tokenizer:
        toks, names = _tokenizers(args.tokenizer)
        report = artifacts(toks, args.extra, only=args.only, names=names)
    else:
        report = artifacts(None, args.extra, only=args.only)
    if args.format == "json":
        _emit(args, report.to_json())
    elif args.format == "html":
        _emit(args, report.to_html())
    else:
        _emit(args, report.to_text(color=_color(args)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    toks, names = _tokenizers(args.tokenizer)
    comparison = compare(toks, input_text(args), names=names)
    if args.format == "json":
        _emit(args, comparison.to_json())
    elif args.format == "html":
        _emit(args, comparison.to_html())
    else:
        counts = ", ".join(f"{n}: {c}" for n, c in zip(names, comparison.counts, strict=True))
        legend = "| token boundary   ^ tokens not shared by every tokenizer"
        if _color(args):
            legend = "| token boundary   underlined: tokens not shared by every tokenizer"
        _emit(
            args,
            comparison.to_text(color=_color(args)) + f"\n\ntokens: {counts}\n{legend}",
        )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    toks, names = _tokenizers(args.tokenizer or ["cl100k"])
    if args.plot:
        refuse_same_file(args.plot, [*args.files, *(args.tokenizer or [])])
    results = [corpus_stats(t, args.files, name=n) for t, n in zip(toks, names, strict=True)]
    if args.plot:
        plot_stats(results, args.plot)
    _emit(args, stats_json(results) if args.format == "json" else stats_text(results))
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
