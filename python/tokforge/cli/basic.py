"""``tokforge encode``, ``decode`` and ``info``: the tokenizer itself from the shell."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ..encodings import resolve_tokenizer
from ..errors import TokforgeError
from ..interop.formats import detect_format
from ..tokenizer import Tokenizer
from .options import Subparsers, add_tokenizer, input_text

__all__ = ["register"]


def _cmd_encode(args: argparse.Namespace) -> int:
    tok = resolve_tokenizer(args.tokenizer)
    text = input_text(args)
    if args.allow_special:
        ids = tok.encode(text, allowed_special="all")
    elif args.ordinary:
        ids = tok.encode_ordinary(text)
    else:
        ids = tok.encode(text)
    if args.json:
        print(json.dumps(ids))
    else:
        print(" ".join(map(str, ids)))
    if args.count:
        print(f"{len(ids)} tokens, {len(text.encode('utf-8'))} bytes", file=sys.stderr)
    return 0


def _parse_ids(raw: str) -> list[int]:
    raw = raw.strip()
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except RecursionError:
            raise TokforgeError("ids: the JSON is nested too deeply") from None
        except ValueError as e:
            raise TokforgeError(f"ids: not a JSON list: {e}") from e
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise TokforgeError("ids: the JSON must be a list of integers")
        return value
    out = []
    for part in raw.replace(",", " ").split():
        # int() would also take "1_000", "٣" (any script's digits) and "+5"
        if not (part.isascii() and part.isdigit()):
            raise TokforgeError(f"ids: {part!r} is not an integer token id (ASCII digits 0-9 only)")
        out.append(int(part))
    return out


def _cmd_decode(args: argparse.Namespace) -> int:
    tok = resolve_tokenizer(args.tokenizer)
    ids = _parse_ids(" ".join(args.ids) if args.ids else sys.stdin.read())
    if args.tokens:
        for i, b in zip(ids, tok.decode_tokens_bytes(ids), strict=True):
            print(f"{i}\t{b!r}")
        return 0
    sys.stdout.write(tok.decode(ids, errors=args.errors))
    if not args.no_newline:
        sys.stdout.write("\n")
    return 0


def _file_format(spec: str) -> str:
    """The format of the file ``spec`` names (``encoding`` for a built-in encoding name,
    ``folder`` for a folder), from its first 64 KB."""
    p = Path(spec)
    if p.is_dir():
        return "folder"
    if not p.is_file():
        return "encoding"
    with open(p, "rb") as f:
        return detect_format(f.read(1 << 16))


def _engine(tok: Tokenizer) -> str:
    """``merge-list`` for a model read from a tokenizer.json (or converted to one: SentencePiece,
    GPT-2, GGUF files), ``rank`` for a byte-level rank vocabulary."""
    return "merge-list" if tok._core.hf_json is not None else "rank"


def _cmd_info(args: argparse.Namespace) -> int:
    spec = args.file if args.file is not None else args.tokenizer
    tok = resolve_tokenizer(spec)
    info = {
        "format": _file_format(spec),
        "engine": _engine(tok),
        "name": tok.name,
        "n_vocab": tok.n_vocab,
        "ordinary_tokens": len(tok._mergeable_ranks),
        "max_token_value": tok.max_token_value,
        "pretokenizer": tok.pretokenizer if isinstance(tok.pretokenizer, str) else "callable",
        "pattern": tok.pattern,
        "special_tokens": tok.special_tokens,
        "byte_fallback": tok.byte_fallback is not None,
        "merges": len(tok.merges or tok.hf_merges or []) or None,
    }
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    width = max(60, shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else 80)
    if info["merges"] is None:
        info["merges"] = "(rank file: merges follow the ranks)"
    for k, v in info.items():
        shown = str(v)
        if k == "pattern" and len(shown) > width - 17:
            shown = shown[: width - 18] + "…"
        print(f"{k:16} {shown}")
    if len(str(info["pattern"])) > width - 17:
        print("(the full pattern: tokforge info --json)")
    return 0


def register(sub: Subparsers) -> None:
    """Adds ``encode``, ``decode`` and ``info``."""
    p = sub.add_parser("encode", help="text -> token ids")
    p.add_argument("text", nargs="?", help="text to encode (default: stdin)")
    p.add_argument("--file", "-f", help="read the text from this UTF-8 file")
    add_tokenizer(p)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--count", action="store_true", help="also print token/byte counts to stderr")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--allow-special", action="store_true", help="encode special tokens as such")
    g.add_argument("--ordinary", action="store_true", help="treat special tokens' text as text")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="token ids -> text")
    p.add_argument(
        "ids", nargs="*", help="ids, space/comma separated or a JSON list (default: stdin)"
    )
    add_tokenizer(p)
    p.add_argument("--errors", choices=["replace", "strict"], default="replace")
    p.add_argument("--tokens", action="store_true", help="print each id with its bytes")
    p.add_argument("--no-newline", "-n", action="store_true", help="no newline after the text")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser(
        "info", help="file format, engine, vocabulary size, pattern and special tokens"
    )
    p.add_argument("file", nargs="?", help="a tokenizer file or folder (instead of --tokenizer)")
    add_tokenizer(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_info)
