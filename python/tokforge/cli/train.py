"""``tokforge train``: learn a BPE vocabulary (byte-level, or character-level with byte
fallback) from files and write it.

    tokforge train corpus.txt more.jsonl.gz --vocab-size 8192,32768 -o tok.json \\
        --special '<|endoftext|>' --trace 10

From pretoken counts made in pieces (one per file or machine; see ``tokforge.counts``):

    tokforge count shard1.txt -o shard1.counts          # anywhere, in parallel
    tokforge merge-counts shard*.counts -o all.counts
    tokforge train --from-counts all.counts --vocab-size 32768 -o tok.json

gives the same merges as training on all the shards at once.

A character-level vocabulary with byte fallback (SentencePiece / Llama 2 style: ``<0xNN>``
tokens for the characters outside the base alphabet), written as a Hugging Face
``tokenizer.json``:

    tokforge train corpus.txt --byte-fallback --character-coverage 0.9995 -v 32000 -o tok.json

Several sizes come from one run (a smaller vocabulary's merges are a prefix of a larger one's)
and are written as ``tok-8192.json``, ``tok-32768.json`` (or wherever ``{vocab_size}`` sits in
the ``-o`` path). Nothing is written unless training succeeds, and each file is written
atomically.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from .. import _core
from ..errors import TokforgeError
from ..files import check_output, refuse_same_file
from ..registry import PRESETS
from ..training.counts import count, info, load, merge, train_merges_from_counts
from ..training.trainer import _train_merges, train_merges_from_counter
from .options import (
    Subparsers,
    add_errors,
    add_jsonl_field,
    add_pattern,
    add_quiet,
    add_special,
    add_threads,
    fail,
)

__all__ = ["count_handler", "handler", "merge_handler", "output_paths", "register"]


def _sizes(raw: str) -> list[int]:
    try:
        sizes = [int(s) for s in raw.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size or a comma-separated list of sizes, got {raw!r}"
        ) from None
    if not sizes:
        raise argparse.ArgumentTypeError("no vocabulary size given")
    return sorted(set(sizes))


def register(subparsers: Subparsers) -> None:
    """Adds the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train",
        help="train a BPE vocabulary (byte-level, or with --byte-fallback) from text files",
        description=(
            "Learn a byte-level BPE vocabulary: ids 0..255 are the bytes, each merge adds an id, "
            "special tokens come last. With --byte-fallback, a character-level one whose rare "
            "characters fall back to <0xNN> byte tokens, written as a Hugging Face "
            "tokenizer.json. Files are plain UTF-8 text or JSON lines (.jsonl, "
            ".ndjson), optionally gzip-compressed, read as a stream."
        ),
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="text or .jsonl files (.gz too)")
    p.add_argument(
        "--from-counts",
        action="append",
        default=[],
        metavar="COUNTS",
        help="train from counts files (tokforge count / merge-counts) instead of FILEs; "
        "repeatable, the counts are added up",
    )
    p.add_argument(
        "--min-pretoken-count",
        type=int,
        default=1,
        metavar="N",
        help="drop pretokens seen fewer than N times before training: less memory, "
        "approximate merges (default: 1, exact)",
    )
    p.add_argument(
        "--vocab-size",
        "-v",
        required=True,
        type=_sizes,
        metavar="N[,N...]",
        help="vocabulary size(s) including the 256 bytes and the special tokens",
    )
    p.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="PATH",
        help="output file; with several sizes, -N is added before the suffix "
        "unless the path contains {vocab_size}",
    )
    add_pattern(p, default=None, note="; with --from-counts, the one the counts record")
    add_special(p, "a special token (repeatable); ids follow the merges")
    p.add_argument(
        "--min-frequency",
        type=int,
        default=2,
        metavar="F",
        help="stop when the best pair occurs fewer than F times (default: 2)",
    )
    p.add_argument("--max-token-bytes", type=int, metavar="N", help="cap on a token's length")
    add_jsonl_field(p)
    add_errors(p, "invalid UTF-8: fail naming file, byte and line (strict), or use U+FFFD")
    add_threads(p)
    p.add_argument(
        "--format",
        choices=["tokforge", "tiktoken"],
        default="tokforge",
        help="tokforge JSON (default), or a .tiktoken rank file that tiktoken loads",
    )
    p.add_argument(
        "--byte-fallback",
        action="store_true",
        help="train a character-level vocabulary with byte fallback instead of a byte-level one: "
        "ids 0..255 are <0x00>..<0xFF>, then the base characters, the merges, the special "
        "tokens; written as a Hugging Face tokenizer.json",
    )
    p.add_argument(
        "--character-coverage",
        type=float,
        default=None,
        metavar="C",
        help="with --byte-fallback: the share of character occurrences, in (0, 1], the base "
        "alphabet covers (most frequent characters first; default 0.9995); the rest fall back "
        "to bytes",
    )
    p.add_argument(
        "--trace", type=int, default=0, metavar="N", help="print the first N merges to stdout"
    )
    p.add_argument("--name", default=None, help="tokenizer name (default: the output's stem)")
    add_quiet(p, "no progress bar or summary")
    p.set_defaults(func=handler)
    _register_counts(subparsers)


def _register_counts(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "count",
        help="count the pretokens of files into a counts file",
        description=(
            "Count the distinct pretokens of text or JSON-lines files (gzip too) and write a "
            "compact, versioned counts file recording the pretokenizer and special tokens. "
            "Counts of separate shards add up (tokforge merge-counts) to exactly the counts of "
            "the whole corpus."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="text or .jsonl files (.gz too)")
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="the counts file")
    add_pattern(p, default="cl100k")
    add_special(p, "a special token whose text is cut out before counting (repeatable)")
    _add_min_count(p)
    add_jsonl_field(p)
    add_errors(p)
    add_threads(p)
    add_quiet(p, "no progress bar or summary")
    p.set_defaults(func=count_handler)

    p = subparsers.add_parser(
        "merge-counts",
        help="add counts files up into one",
        description="Add counts files up. Files made with different pretokenizers or special "
        "tokens are refused.",
    )
    p.add_argument("inputs", nargs="+", metavar="COUNTS", help="counts files")
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="the summed counts file")
    _add_min_count(p)
    add_quiet(p, "no summary")
    p.set_defaults(func=merge_handler)


def _add_min_count(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--min-pretoken-count",
        type=int,
        default=1,
        metavar="N",
        help="leave out pretokens seen fewer than N times: a smaller file, but training on it "
        "is approximate (default: 1, exact)",
    )


def _summary(path: Path) -> str:
    h = info(path)
    pruned = (
        f", pretokens seen < {h['min_pretoken_count']} times left out (approximate)"
        if h["min_pretoken_count"] > 1
        else ""
    )
    return (
        f"wrote {path}: {h['distinct']} distinct pretokens, {h['total']} occurrences, "
        f"{h['stats']['bytes'] / 1e6:.1f} MB of text, {path.stat().st_size / 1e6:.2f} MB{pruned}"
    )


def count_handler(args: argparse.Namespace) -> int:
    """Runs ``tokforge count``."""
    try:
        out = Path(args.output)
        if not out.parent.is_dir():
            raise TokforgeError(f"{out}: the output folder {out.parent} does not exist")
        _check_files([Path(f) for f in args.files])
        refuse_same_file(out, args.files)
        out = check_output(out)
        if len(set(args.special)) != len(args.special):
            raise TokforgeError("--special: the same token is given twice")
        count(
            args.files,
            out,
            pattern=args.pattern,
            special_tokens=list(args.special),
            num_threads=args.threads,
            text_field=args.text_field,
            errors=args.errors,
            min_pretoken_count=args.min_pretoken_count,
            progress=not args.quiet,
        )
        if not args.quiet:
            print(_summary(out), file=sys.stderr)
        return 0
    except (TokforgeError, OSError, ValueError, TypeError) as e:
        return fail(e, "count")


def merge_handler(args: argparse.Namespace) -> int:
    """Runs ``tokforge merge-counts``."""
    try:
        out = Path(args.output)
        if not out.parent.is_dir():
            raise TokforgeError(f"{out}: the output folder {out.parent} does not exist")
        out = check_output(out)
        merge(args.inputs, out, min_pretoken_count=args.min_pretoken_count)
        if not args.quiet:
            print(_summary(out), file=sys.stderr)
        return 0
    except (TokforgeError, OSError, ValueError, TypeError) as e:
        return fail(e, "merge-counts")


def _check_files(files: list[Path]) -> None:
    for f in files:
        if not f.is_file():
            what = "is a directory" if f.is_dir() else "no such file"
            raise TokforgeError(f"{f}: {what}")


def output_paths(output: str, sizes: list[int]) -> dict[int, Path]:
    """Where each size goes: ``output`` itself for one size; otherwise ``{vocab_size}`` in the
    path is replaced, or ``-N`` is added before the suffix.

    >>> {k: str(v) for k, v in output_paths("out/tok.json", [8192, 32768]).items()}
    {8192: 'out/tok-8192.json', 32768: 'out/tok-32768.json'}
    """
    if "{vocab_size}" in output:
        return {n: Path(output.replace("{vocab_size}", str(n))) for n in sizes}
    if len(sizes) == 1:
        return {sizes[0]: Path(output)}
    p = Path(output)
    return {n: p.with_name(f"{p.stem}-{n}{p.suffix}") for n in sizes}


def handler(args: argparse.Namespace) -> int:
    """Runs ``tokforge train``; returns the exit code. Errors print one line to stderr."""
    try:
        return _run(args)
    except (TokforgeError, OSError, ValueError, TypeError) as e:
        return fail(e, "train")


# StreamHandler is generic in typeshed only; StreamHandler[TextIO] fails at run time on 3.10
class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints the trainer's warnings as ``tokforge: ...`` lines (installed once), to whatever
    ``sys.stderr`` is when the record is emitted: bound at install time, a stream that was
    later replaced and closed (pytest's capture) made every later warning a logging error."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _ensure_log_handler() -> None:
    logger = logging.getLogger("tokforge")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        h = _StderrHandler(sys.stderr)
        h.setFormatter(logging.Formatter("tokforge: %(message)s"))
        h.setLevel(logging.WARNING)
        logger.addHandler(h)


def _run(args: argparse.Namespace) -> int:
    sizes: list[int] = args.vocab_size
    n_special = len(args.special)
    if len(set(args.special)) != n_special:
        raise TokforgeError("--special: the same token is given twice")
    too_small = [n for n in sizes if n < 256 + n_special]
    if too_small:
        raise TokforgeError(
            f"--vocab-size {too_small[0]} is too small: 256 byte ids and {n_special} special "
            f"token(s) need at least {256 + n_special}"
        )
    if args.byte_fallback and args.format == "tiktoken":
        raise TokforgeError(
            "--format tiktoken cannot hold a byte-fallback vocabulary (a .tiktoken file holds "
            "byte-level ranks only); leave --format out to write a tokenizer.json"
        )
    if args.character_coverage is not None and not args.byte_fallback:
        raise TokforgeError("--character-coverage applies only with --byte-fallback")
    files = [Path(f) for f in args.files]
    if args.from_counts and files:
        raise TokforgeError("give either FILEs or --from-counts, not both")
    if not args.from_counts and not files:
        raise TokforgeError("no input: give FILEs to train on, or --from-counts COUNTS")
    _check_files(files + [Path(f) for f in args.from_counts])
    paths = output_paths(args.output, sizes)
    for n, path in list(paths.items()):
        if not path.parent.is_dir():
            raise TokforgeError(f"{path}: the output folder {path.parent} does not exist")
        refuse_same_file(path, [*files, *args.from_counts])
        paths[n] = check_output(path)
    pattern = args.pattern if args.pattern is not None else "cl100k"
    pre = (
        {"pretokenizer": pattern}
        if pattern in PRESETS or pattern.endswith("_base")
        else {"pattern": pattern}
    )
    logger = logging.getLogger("tokforge.train")
    saved_level = logger.level
    if args.quiet:
        logger.setLevel(logging.ERROR)
    else:
        _ensure_log_handler()
    try:
        if args.from_counts:
            result = _train_from_counts(args, sizes)
        else:
            if args.min_pretoken_count != 1:
                raise TokforgeError(
                    "--min-pretoken-count applies to --from-counts (or tokforge count)"
                )
            result = _train_merges(
                files,
                None if args.byte_fallback else max(sizes) - 256 - n_special,
                max(sizes) if args.byte_fallback else None,
                byte_fallback=args.byte_fallback,
                character_coverage=args.character_coverage,
                special_tokens=list(args.special),
                min_frequency=args.min_frequency,
                max_token_bytes=args.max_token_bytes,
                num_threads=args.threads,
                progress=not args.quiet,
                text_field=args.text_field,
                errors=args.errors,
                **pre,
            )
    finally:
        logger.setLevel(saved_level)
    if args.trace > 0:
        for line in result.trace(args.trace):
            print(line)
    # Build every tokenizer before writing any file: a failure leaves no output behind.
    built = {
        n: result.tokenizer(n, name=args.name if args.name is not None else paths[n].stem)
        for n in sizes
    }
    for n, tok in built.items():
        if args.format == "tiktoken":
            tok.to_tiktoken(paths[n])
        else:
            tok.save(paths[n])
    if not args.quiet:
        n_chars = len(result.alphabet or ())
        for n, tok in built.items():
            n_sp = len(tok.special_tokens)
            merges = tok.n_vocab - 256 - n_chars - n_sp
            chars = (
                f"256 byte tokens, {n_chars} characters, " if result.alphabet is not None else ""
            )
            print(
                f"wrote {paths[n]}: {tok.n_vocab} ids ({chars}{merges} merges, {n_sp} special)",
                file=sys.stderr,
            )
        if args.format == "tiktoken":
            print(
                "a .tiktoken file holds only the ranks; load it with "
                "tiktoken.Encoding(name, pat_str=..., mergeable_ranks="
                "tiktoken.load.load_tiktoken_bpe(path), special_tokens={...})",
                file=sys.stderr,
            )
    return 0


def _train_from_counts(args: argparse.Namespace, sizes: list[int]) -> Any:
    """Trains from counts files, checking that --pattern and --special (when given) agree with
    what the counts record."""
    counter = load(args.from_counts, num_threads=args.threads)
    if args.pattern is not None:
        wanted = _core_pattern(args.pattern)
        if wanted != counter.pattern and args.pattern != counter.preset:
            raise TokforgeError(
                f"--pattern {args.pattern} differs from the pretokenizer the counts were made "
                f"with ({counter.preset or counter.pattern}); leave --pattern out"
            )
    if args.special and sorted(args.special) != sorted(counter.special_tokens):
        raise TokforgeError(
            f"--special {sorted(args.special)} differs from the special tokens the counts were "
            f"made with ({sorted(counter.special_tokens)})"
        )
    specials = list(args.special) if args.special else list(counter.special_tokens)
    too_small = [n for n in sizes if n < 256 + len(specials)]
    if too_small:
        raise TokforgeError(
            f"--vocab-size {too_small[0]} is too small: 256 byte ids and {len(specials)} "
            f"special token(s) need at least {256 + len(specials)}"
        )
    if args.byte_fallback:
        if args.min_pretoken_count > 1:
            counter.prune(args.min_pretoken_count)
        return train_merges_from_counter(
            counter,
            vocab_size=max(sizes),
            special_tokens=specials,
            min_frequency=args.min_frequency,
            max_token_bytes=args.max_token_bytes,
            character_coverage=args.character_coverage,
            progress=not args.quiet,
        )
    return train_merges_from_counts(
        counter,
        max(sizes) - 256 - len(specials),
        special_tokens=specials,
        min_frequency=args.min_frequency,
        max_token_bytes=args.max_token_bytes,
        min_pretoken_count=args.min_pretoken_count,
        progress=not args.quiet,
    )


def _core_pattern(pattern: str) -> str | None:
    """The regex a --pattern value stands for (None for whitespace and none)."""
    if pattern in ("whitespace", "none"):
        return None
    try:
        return _core.preset_pattern(pattern)
    except (TokforgeError, ValueError):
        return pattern
