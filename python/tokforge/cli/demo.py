"""``tokforge demo``: the main job on the bundled sample corpus, end to end. It trains a small
vocabulary from the sample, encodes and decodes the whole sample with it and with cl100k_base /
o200k_base (when their rank files are found locally), checks every round trip, and shows how
each tokenizer splits a few telling strings."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..encodings import get_encoding
from ..errors import TokforgeError
from ..inspect.artifacts import artifacts
from ..sample import sample_path
from ..tokenizer import Tokenizer
from ..training.trainer import train
from .options import Subparsers

#: Strings whose splits explain common LLM surprises (letter counting, digits, case, spaces).
SHOWCASE = [
    "How many r's are in strawberry?",
    "123 + 456 = 579; 1234567890",
    "hello Hello HELLO  hello",
    "GPT-4 reads HTML & JSON",
    "Der Straßenbahnfahrer grüßt.",
    "日本語のテキスト",
    "    return x  # indented",
]


def _visible(b: bytes) -> str:
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{c:02X}>" for c in b)
    return s.replace(" ", "·").replace("\n", "↵").replace("\t", "→")


def render_split(tok: Tokenizer, text: str) -> str:
    """``[How][·many][·r]['s]...``: each token in brackets, spaces as ``·``, partial UTF-8 as
    ``<0xNN>``."""
    return "".join(f"[{_visible(b)}]" for b in tok.decode_tokens_bytes(tok.encode_ordinary(text)))


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


def _train(text_path: str, vocab_size: int, out: Path, quiet: bool) -> Tokenizer:
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
    print(f"   {len(merges)} merges in {dt:.2f} s, saved to {path}")
    if merges:
        shown = " ".join(
            f"[{_visible(tok.decode_single_token_bytes(256 + k))}]"
            for k in range(min(10, len(merges)))
        )
        print(f"   first merges: {shown}")
    return tok


def run_demo(args: argparse.Namespace) -> int:
    corpus = args.corpus or sample_path()
    with open(corpus, encoding="utf-8") as f:
        text = f.read()
    n_bytes = len(text.encode("utf-8"))
    print(f"tokforge demo: corpus {corpus}")
    print(f"   {n_bytes:,} bytes, {len(text):,} characters, {text.count(chr(10)):,} lines\n")

    print(f"1. Train a {args.vocab_size}-token byte-level BPE on it (cl100k split)")
    tokenizers = [_train(corpus, args.vocab_size, Path(args.out), args.quiet)]
    for name in ("cl100k_base", "o200k_base"):
        try:
            tokenizers.append(get_encoding(name))
        except TokforgeError as e:
            print(f"   {name}: skipped ({str(e).splitlines()[0][:100]}...)")
    if not tokenizers:
        print("no tokenizer available", file=sys.stderr)
        return 1

    print("\n2. Encode and decode the whole corpus")
    print(f"   {'tokenizer':<16}{'tokens':>10}{'bytes/token':>13}{'encode MB/s':>13}  round trip")
    ok = True
    for tok in tokenizers:
        m = _measure(tok, text)
        ok &= m["round_trip"]
        print(
            f"   {tok.name:<16}{m['tokens']:>10,}{m['bytes_per_token']:>13.2f}"
            f"{m['encode_mb_s']:>13.1f}  {'exact' if m['round_trip'] else 'MISMATCH'}"
        )

    print("\n3. Tokenization artifacts: how each tokenizer splits telling strings")

    report = artifacts(tokenizers, names=[t.name for t in tokenizers])
    for line in report.to_text(color=None).splitlines():
        print(f"   {line}")
    if not ok:
        print("\nround trip FAILED", file=sys.stderr)
        return 1
    print("\nEvery decode(encode(text)) == text.")
    return 0


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("demo", help="train, encode, decode and show splits on the sample")
    p.add_argument("--corpus", help="a UTF-8 text file instead of the bundled sample")
    p.add_argument("--vocab-size", type=int, default=2048, help="trained vocabulary size")
    p.add_argument("--out", default="tokforge-demo", help="folder for the trained tokenizer")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run_demo)
