"""``tokforge convert``: read a tokenizer in any format tokforge knows and write it in another.

Inputs are recognised by content (:meth:`tokforge.Tokenizer.load`): tokforge JSON, Hugging Face
``tokenizer.json``, SentencePiece ``.model``, GPT-2 ``vocab.json`` (with ``merges.txt`` beside
it, or given by ``--merges``), ``.tiktoken`` rank files, or the names ``cl100k``/``o200k``.
Outputs are written atomically. ``--verify`` reads the output back and checks that it encodes
the bundled sample corpus to the same ids (and, for ``hf``, that HF ``tokenizers`` does too,
when it is installed)."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

from .. import files
from ..encodings import resolve_tokenizer
from ..errors import TokforgeError
from ..interop import sentencepiece
from ..tokenizer import Tokenizer
from .options import Subparsers

FORMATS = ("tokforge", "hf", "tiktoken", "sentencepiece-vocab")


def guess_format(out: Path) -> str:
    """The output format an unqualified ``OUT`` implies: ``tokenizer.json`` -> hf,
    ``.tiktoken`` -> tiktoken, ``.vocab`` -> sentencepiece-vocab, else tokforge."""
    if out.name == "tokenizer.json" or out.is_dir():
        return "hf"
    if out.suffix == ".tiktoken":
        return "tiktoken"
    if out.suffix == ".vocab":
        return "sentencepiece-vocab"
    return "tokforge"


def read_input(src: str, merges: str | None) -> Tokenizer:
    """The tokenizer ``src`` names (a file, a folder, or an encoding name)."""
    if merges is not None:
        return Tokenizer.from_gpt2(src, merges)
    return resolve_tokenizer(src)


def convert(src: str, out: Path, fmt: str, merges: str | None = None) -> Tokenizer:
    """Converts ``src`` to ``out`` in ``fmt``; returns the tokenizer read from ``src``."""
    if fmt not in FORMATS:
        raise TokforgeError(f"unknown output format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "sentencepiece-vocab":
        path = Path(src)
        if not path.is_file():
            raise TokforgeError(f"{src}: --to sentencepiece-vocab needs a SentencePiece .model")
        model = sentencepiece.read_model(path)
        text = sentencepiece.to_vocab_text(model)
        files.write_atomic(out, text.encode("utf-8"))
        return Tokenizer.from_sentencepiece(path)
    tok = read_input(src, merges)
    if fmt == "tokforge":
        # What Tokenizer.save writes: tokforge's JSON, or, for a merge-list model (from
        # tokenizer.json / SentencePiece / GPT-2 files), the tokenizer.json that holds it.
        tok.save(out)
    elif fmt == "hf":
        tok.to_hf(out)
    else:
        tok.to_tiktoken(out)
    return tok


def sample_documents() -> list[str]:
    text = resources.files("tokforge").joinpath("data/sample.txt").read_text(encoding="utf-8")
    return [p for p in text.split("\n\n") if p]


def verify(tok: Tokenizer, out: Path, fmt: str) -> list[str]:
    """Reads ``out`` back and compares ids on the bundled sample; returns what was checked."""
    docs = sample_documents()
    expected = tok.encode_batch(docs, allowed_special="all")
    checked = []
    if fmt == "tiktoken":
        back = Tokenizer.from_tiktoken(
            out,
            pattern=tok.pattern,
            pretokenizer=None if tok.pattern else tok.pretokenizer,
            special_tokens=tok.special_tokens,
        )
    else:
        back = Tokenizer.load(out)
    if back.encode_batch(docs, allowed_special="all") != expected:
        raise TokforgeError(f"{out}: read back, it encodes the sample differently")
    checked.append("tokforge reads it back with identical ids")
    if fmt == "hf":
        try:
            import tokenizers
        except ImportError:
            return checked
        path = out / "tokenizer.json" if out.is_dir() else out
        hf = tokenizers.Tokenizer.from_file(str(path))
        got = [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)]
        if got != expected:
            raise TokforgeError(f"{out}: HF tokenizers encodes the sample differently")
        checked.append(f"HF tokenizers {tokenizers.__version__} gives identical ids")
    return checked


def _cmd_convert(args: argparse.Namespace) -> int:
    out = Path(args.output)
    fmt = args.to or guess_format(out)
    src = Path(args.input)
    inputs = [src, *([Path(args.merges)] if args.merges else [])]
    if src.is_dir():
        inputs += [
            src / n for n in ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt")
        ]
    target = out / "tokenizer.json" if out.is_dir() else out
    files.refuse_same_file(target, inputs)
    tok = convert(args.input, out, fmt, args.merges)
    info: dict[str, Any] = {"output": str(out), "format": fmt, "n_vocab": tok.n_vocab}
    if args.verify and fmt != "sentencepiece-vocab":
        info["verified"] = verify(tok, out, fmt)
    if fmt == "tokforge" and tok._core.hf_json is not None:
        info["note"] = (
            "a merge-list model: saved as tokenizer.json, the file tokforge keeps such models in"
        )
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
    else:
        print(f"wrote {out} ({fmt}, {tok.n_vocab} ids)")
        if "note" in info:
            print(f"  note: {info['note']}")
        for line in info.get("verified", []):
            print(f"  verified: {line}")
    return 0


def register(subparsers: Subparsers) -> None:
    """Adds the ``convert`` sub-command."""
    p = subparsers.add_parser(
        "convert",
        help="convert a tokenizer between tokforge, HF tokenizer.json, .tiktoken, SentencePiece",
        description=(
            "Read IN (tokforge JSON, HF tokenizer.json or its folder, SentencePiece .model, GPT-2 "
            "vocab.json, .tiktoken, or cl100k/o200k) and write OUT atomically."
        ),
    )
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument(
        "--to",
        choices=FORMATS,
        help="output format (default from OUT: tokenizer.json -> hf, .tiktoken, .vocab -> "
        "sentencepiece-vocab, else tokforge)",
    )
    p.add_argument("--merges", metavar="FILE", help="merges.txt, when IN is a GPT-2 vocab.json")
    p.add_argument(
        "--verify", action="store_true", help="read OUT back and compare ids on the sample"
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_cmd_convert)
