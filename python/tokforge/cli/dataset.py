"""``tokforge encode-dataset``: encode files into ``.npy`` token shards with a manifest.

    tokforge encode-dataset data/*.jsonl.gz -t tok.json -o shards/ --eot '<|endoftext|>'
    tokforge encode-dataset big.txt -t cl100k -o shards/ --chunk-mb 64 --workers 8
    tokforge encode-dataset data/*.txt -t tok.json -o shards/ --scheduler tcp://host:8786

Local processes by default; ``--scheduler`` runs on a Dask cluster. Rerunning skips the shards
that are already complete (checked by SHA-256), so an interrupted run is finished by running it
again.
"""

from __future__ import annotations

import argparse
import sys

from ..encodings import resolve_tokenizer
from ..errors import TokforgeError
from ..training.distributed import encode_files
from .options import (
    Subparsers,
    add_errors,
    add_jsonl_field,
    add_quiet,
    add_tokenizer,
    fail,
    positive_float,
    positive_int,
)

__all__ = ["handler", "register"]


def register(subparsers: Subparsers) -> None:
    """Adds the ``encode-dataset`` sub-command."""
    p = subparsers.add_parser(
        "encode-dataset",
        help="encode files into .npy token shards with a manifest (local processes or Dask)",
        description=(
            "Encode text files (one document each) or JSON lines (one document per record) into "
            ".npy token shards, uint16 when the vocabulary fits, else uint32, plus "
            "manifest.json. Shards appear atomically; a rerun skips finished ones."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="text or .jsonl files (.gz too)")
    add_tokenizer(p)
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="the shard folder")
    p.add_argument("--eot", metavar="TOKEN", help="special token appended after each document")
    p.add_argument(
        "--allow-special",
        action="store_true",
        help="encode special tokens' text in the data as special tokens (default: as text)",
    )
    p.add_argument(
        "--chunk-mb",
        type=positive_float,
        metavar="MB",
        help="cut uncompressed files larger than this into pieces at line ends, a shard each",
    )
    add_jsonl_field(p)
    add_errors(p)
    p.add_argument(
        "--workers", type=positive_int, metavar="N", help="local processes (default: cores)"
    )
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="a Dask scheduler address (needs distributed)"
    )
    add_quiet(p, "no summary")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Runs ``tokforge encode-dataset``; returns the exit code."""
    try:
        return _run(args)
    except (TokforgeError, OSError, ValueError, TypeError, ImportError) as e:
        return fail(e, "encode-dataset")


def _run(args: argparse.Namespace) -> int:
    tok = resolve_tokenizer(args.tokenizer)
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError as e:
            raise ImportError("--scheduler needs Dask: pip install 'tokforge[distributed]'") from e
        client = Client(args.scheduler)
    try:
        manifest = encode_files(
            args.files,
            tok,
            args.output,
            client,
            chunk_bytes=None if args.chunk_mb is None else round(args.chunk_mb * 1e6),
            text_field=args.text_field,
            eot=args.eot,
            allowed_special="all" if args.allow_special else frozenset(),
            errors=args.errors,
            num_workers=args.workers,
        )
    finally:
        if client is not None:
            client.close()
    if not args.quiet:
        t = manifest["totals"]
        print(
            f"wrote {t['shards']} shard(s) ({manifest['dtype']}) to {args.output}: "
            f"{t['documents']} documents, {t['text_bytes'] / 1e6:.1f} MB -> {t['tokens']} tokens",
            file=sys.stderr,
        )
    return 0
