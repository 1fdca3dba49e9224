"""The ``tokforge`` command line. Each sub-command lives in a module with a
``register(subparsers)`` function; ``main(argv)`` returns the exit code (tests call it directly).
Errors print one line, ``tokforge: error: ...``, and exit 1."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from . import __version__
from .errors import TokforgeError

# Sub-command modules beyond this file's own commands, each with register(subparsers).
_COMMAND_MODULES = (
    "tokforge.demo",
    "tokforge.train_cli",
    "tokforge.dataset_cli",
    "tokforge.inspect_cli",
    "tokforge.bench_cli",
    "tokforge.nn.cli",
    "tokforge.interop_cli",
)


def _add_tokenizer_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tokenizer",
        "-t",
        default="cl100k",
        help="cl100k, o200k (from local rank files) or a tokenizer file (default: cl100k)",
    )


def _read_text(args: argparse.Namespace) -> str:
    if args.file is not None:
        with open(args.file, encoding="utf-8") as f:
            return f.read()
    if args.text is not None:
        return str(args.text)
    return sys.stdin.read()


def _cmd_encode(args: argparse.Namespace) -> int:
    from .registry import resolve_tokenizer

    tok = resolve_tokenizer(args.tokenizer)
    text = _read_text(args)
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
        except ValueError as e:
            raise TokforgeError(f"ids: not a JSON list: {e}") from e
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise TokforgeError("ids: the JSON must be a list of integers")
        return value
    out = []
    for part in raw.replace(",", " ").split():
        try:
            out.append(int(part))
        except ValueError:
            raise TokforgeError(f"ids: {part!r} is not an integer token id") from None
    return out


def _cmd_decode(args: argparse.Namespace) -> int:
    from .registry import resolve_tokenizer

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


def _cmd_info(args: argparse.Namespace) -> int:
    from .registry import resolve_tokenizer

    tok = resolve_tokenizer(args.tokenizer)
    info = {
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
    for k, v in info.items():
        print(f"{k:16} {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokforge",
        description="Rust-accelerated BPE: encode, decode, train, inspect, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"tokforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("encode", help="text -> token ids")
    p.add_argument("text", nargs="?", help="text to encode (default: stdin)")
    p.add_argument("--file", "-f", help="read the text from this UTF-8 file")
    _add_tokenizer_arg(p)
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
    _add_tokenizer_arg(p)
    p.add_argument("--errors", choices=["replace", "strict"], default="replace")
    p.add_argument("--tokens", action="store_true", help="print each id with its bytes")
    p.add_argument("--no-newline", "-n", action="store_true", help="no newline after the text")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("info", help="vocabulary size, pattern and special tokens")
    _add_tokenizer_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_info)

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that feature is not part of this build
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (TokforgeError, OSError, UnicodeDecodeError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"tokforge: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tokforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
