"""``tokforge demo``: the main job on the bundled sample corpus, end to end. It trains a small
vocabulary from the sample, encodes and decodes the whole sample with it and with cl100k_base /
o200k_base (saying where their rank files were found, or why they are left out), checks every
round trip, shows how each tokenizer splits two telling strings, and ends with commands to try
next. The output fits 80 columns (the terminal's width when it is a terminal) and about a
screen and a half; ``--long`` adds the whole showcase of tokenization surprises."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from .. import registry
from ..encodings import get_encoding
from ..errors import TokforgeError
from ..inspect.artifacts import artifacts
from ..inspect.viz import display_width, printable, wrap_pieces
from ..sample import sample_path
from ..tokenizer import Tokenizer
from ..training.trainer import train
from .options import Subparsers

#: The two strings the short demo splits: letter counting and digit grouping.
SHOWCASE = ["How many r's are in strawberry?", "1234 + 5678 = 6912"]

_WHY = (
    "A model sees token ids, not letters or digits: counting the r's or adding the numbers "
    "means knowing how each token is spelled."
)


def output_width() -> int:
    """80 columns, or the terminal's width when standard output is a terminal (at least 40)."""
    if sys.stdout.isatty():
        return max(40, shutil.get_terminal_size((80, 24)).columns)
    return 80


def _wrap(text: str, width: int, indent: str = "   ", subsequent: str | None = None) -> list[str]:
    """``text`` on lines of at most ``width`` columns, broken between words only."""
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _shown_path(path: Path | str, room: int) -> str:
    """``path`` relative to the current folder when inside it, with ``~`` for the home, and
    cut to its last parts after ``…/`` when longer than ``room`` columns (a path has no
    spaces to wrap at, and an installed package's is long)."""
    p = Path(path).resolve()
    try:
        shown = str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        try:
            shown = str(Path("~") / p.relative_to(Path.home().resolve()))
        except ValueError:
            shown = str(p)
    if len(shown) <= room:
        return shown
    tail = p.name
    for part in reversed(p.parts[:-1]):
        if len(part) + len(tail) + 3 > room:
            break
        tail = f"{part}/{tail}"
    return f"…/{tail}"


def _how_found(path: Path) -> str:
    """Which of the registry's places ``path`` is (see :mod:`tokforge.registry`)."""
    p = path.resolve()
    places = [
        (os.environ.get("TOKFORGE_SHARED"), "through $TOKFORGE_SHARED"),
        (str(Path(__file__).resolve().parents[1]), "shipped inside tokforge"),
        (os.environ.get("TOKFORGE_VOCAB_DIR"), "through $TOKFORGE_VOCAB_DIR"),
        (os.environ.get("TIKTOKEN_CACHE_DIR"), "in tiktoken's cache"),
        (os.environ.get("DATA_GYM_CACHE_DIR"), "in tiktoken's cache"),
        (str(Path.cwd() / "shared"), "in ./shared"),
        (str(Path.cwd().parent / "shared"), "in ../shared"),
    ]
    for base, how in places:
        if base and p.is_relative_to(Path(base).resolve()):
            return how
    return "in tiktoken's cache" if "data-gym-cache" in p.parts else "locally"


def rank_file_note(name: str, width: int) -> list[str]:
    """Where encoding ``name``'s rank file was found, as the registry answers, or a sentence
    saying why the encoding is left out; wrapped to ``width`` between words."""
    try:
        path = registry.find_rank_file(name)
    except TokforgeError:
        return _wrap(
            f"{name}: left out, because no local copy of its rank file was found "
            "(tokforge never downloads). Set TOKFORGE_SHARED to the folder holding "
            "vocabs/, or see `tokforge info -t cl100k` for the places searched.",
            width,
            subsequent="     ",
        )
    return _wrap(
        f"{name}: rank file {_shown_path(path, width - 8)} ({_how_found(Path(path))})",
        width,
        subsequent="     ",
    )


def _measure(tok: Tokenizer, text: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    ids = tok.encode_ordinary(text)
    t1 = time.perf_counter()
    back = tok.decode(ids)
    t2 = time.perf_counter()
    n_bytes = len(text.encode("utf-8"))
    return {
        "tokens": len(ids),
        "bytes_per_token": n_bytes / max(1, len(ids)),
        "encode_mb_s": n_bytes / 1e6 / max(t1 - t0, 1e-9),
        "decode_mb_s": n_bytes / 1e6 / max(t2 - t1, 1e-9),
        "round_trip": back == text,
    }


def _train(text_path: str, vocab_size: int, out: Path, quiet: bool, width: int) -> Tokenizer:
    t0 = time.perf_counter()
    tok = train(
        [Path(text_path)],
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        progress=not quiet,
        name=f"sample-{vocab_size}",
    )
    dt = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sample-{vocab_size}.json"
    tok.save(path)
    merges = tok.merges or []
    lines = _wrap(
        f"{len(merges)} merges in {dt:.2f} s, saved to {_shown_path(path, width - 8)}",
        width,
        subsequent="     ",
    )
    if merges:
        firsts = [
            f"[{printable(tok.decode_single_token_bytes(256 + k))}]"
            for k in range(min(10, len(merges)))
        ]
        shown = wrap_pieces("   first merges: ", [p + " " for p in firsts], width)[0].rstrip()
        lines.append(shown)
    print("\n".join(lines))
    return tok


def _split_lines(tokenizers: list[Tokenizer], width: int) -> list[str]:
    name_w = max(display_width(t.name) for t in tokenizers)
    lines = []
    splits = [
        [t.decode_tokens_bytes(t.encode_ordinary(text)) for t in tokenizers] for text in SHOWCASE
    ]
    count_w = max(len(str(len(s))) for row in splits for s in row)
    for text, row in zip(SHOWCASE, splits, strict=True):
        lines.append(f"   {text!r}")
        for tok, pieces in zip(tokenizers, row, strict=True):
            head = f"     {tok.name:<{name_w}}  {len(pieces):>{count_w}}  "
            lines += wrap_pieces(head, [f"[{printable(p)}]" for p in pieces], width)
    return lines


def _next_steps(trained: Path, openai: list[str]) -> list[tuple[str, str]]:
    """Three commands to try next, with what each shows."""
    mine = _shown_path(trained, room=1 << 16)  # a command argument: never cut
    big = openai[0] if openai else mine
    return [
        (f'tokforge inspect "How many r\'s are in strawberry?" -t {big}', "each token, coloured"),
        (f'tokforge compare "3.14159 + 2024" -t {mine} -t {big}', "two tokenizers, aligned"),
        ("tokforge train YOUR.txt --vocab-size 8192 -o mine.json", "your own vocabulary"),
    ]


def run_demo(args: argparse.Namespace) -> int:
    width = output_width()
    corpus = args.corpus or sample_path()
    with open(corpus, encoding="utf-8") as f:
        text = f.read()
    n_bytes = len(text.encode("utf-8"))
    what = "your corpus" if args.corpus else "the bundled sample corpus"
    print(
        "\n".join(
            _wrap(
                f"tokforge demo on {what}: {n_bytes:,} bytes, {text.count(chr(10)):,} lines "
                f"({_shown_path(corpus, width - 8)})",
                width,
                indent="",
                subsequent="   ",
            )
        )
        + "\n"
    )

    heading = f"1. Train a {args.vocab_size}-token byte-level BPE on it, and load two OpenAI ones"
    print("\n".join(_wrap(heading, width, indent="", subsequent="   ")))
    out = Path(args.out)
    tokenizers = [_train(corpus, args.vocab_size, out, args.quiet, width)]
    openai = []
    for name in ("cl100k_base", "o200k_base"):
        print("\n".join(rank_file_note(name, width)))
        try:
            tokenizers.append(get_encoding(name))
            openai.append(name.split("_")[0])
        except TokforgeError:
            continue

    print()
    print("\n".join(_wrap("2. Encode and decode the whole corpus", width, indent="")))
    name_w = max(12, *(display_width(t.name) for t in tokenizers))
    print(f"   {'tokenizer':<{name_w}}{'tokens':>9}{'bytes/tok':>11}{'MB/s':>8}  round trip")
    ok = True
    for tok in tokenizers:
        m = _measure(tok, text)
        ok &= m["round_trip"]
        print(
            f"   {tok.name:<{name_w}}{m['tokens']:>9,}{m['bytes_per_token']:>11.2f}"
            f"{m['encode_mb_s']:>8.1f}  {'exact' if m['round_trip'] else 'MISMATCH'}"
        )
    print("\n".join(_wrap("(MB/s: encoding speed in megabytes of text per second)", width)))

    print()
    print("\n".join(_wrap("3. How each tokenizer splits two telling strings", width, indent="")))
    print("\n".join(_split_lines(tokenizers, width)))
    print("\n".join(_wrap(_WHY, width)))
    if args.long:
        print("\n4. Tokenization surprises, explained\n")
        report = artifacts(tokenizers, names=[t.name for t in tokenizers])
        for line in report.to_text(color=None, width=width - 3).splitlines():
            print(f"   {line}".rstrip())
    else:
        print("\n".join(_wrap("Seven such surprises, explained: tokforge demo --long", width)))

    if not ok:
        print("\nround trip FAILED", file=sys.stderr)
        return 1
    print("\nEvery decode(encode(text)) == text. Try next:")
    for command, what in _next_steps(out / f"sample-{args.vocab_size}.json", openai):
        print("\n".join(command_lines(command, what, width)))
    return 0


def command_lines(command: str, what: str, width: int) -> list[str]:
    """A shell command to copy, indented by two, with ``# what`` after it when that fits, and
    continued with ``\\`` at a space when the command alone passes ``width``.

    >>> [part.strip() for part in command_lines("tokforge info", "the encoding", 40)[0].split("#")]
    ['tokforge info', 'the encoding']
    >>> print("\\n".join(command_lines("tokforge compare x -t a.json -t cl100k", "", 30)))
      tokforge compare x -t \\
          a.json -t cl100k
    """
    line = f"  {command}"
    if display_width(line) <= width:
        if what and display_width(line) + 4 + len(what) <= width:
            line = f"{line:<{width - 4 - len(what)}}  # {what}"
        return [line]
    lines = []
    while display_width(line) > width:
        cut = line.rfind(" ", 0, width - 1)
        if cut <= len(line) - len(line.lstrip()):
            break
        lines.append(line[:cut] + " \\")
        line = "      " + line[cut + 1 :]
    return [*lines, line]


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("demo", help="train, encode, decode and show splits on the sample")
    p.add_argument("--corpus", help="a UTF-8 text file instead of the bundled sample")
    p.add_argument("--vocab-size", type=int, default=2048, help="trained vocabulary size")
    p.add_argument("--out", default="tokforge-demo", help="folder for the trained tokenizer")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument(
        "--long", action="store_true", help="also show every tokenization surprise, explained"
    )
    p.set_defaults(func=run_demo)
