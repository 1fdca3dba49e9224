"""``tokforge bench``: tokforge against every installed peer on your own text, ids checked.

Each file is cut into ~4 KB documents (at character boundaries) and every library encodes every
document, one call at a time, on one thread:

- **cold**: in a fresh process per library, each document encoded once (the first encounter,
  as a service sees new text); only the encode calls are timed, not the loading, nor a first
  call on a one-letter text that lets each library finish its imports and deferred set-up;
- **warm**: in this process, the best of ``--repeat`` passes over the same documents.

``--cold-repeat N`` runs N rounds of cold processes, each round every library once, and keeps
each library's fastest process per file: a slow moment of a busy machine then falls on every
library alike, not on whichever ran during it.

Every library encodes special tokens' text as ordinary text (tiktoken's ``encode_ordinary``).
Figures are MB/s of UTF-8 input, with the ratio to tiktoken. Every library's ids are compared,
document by document, with tiktoken's (or tokforge's when tiktoken is not installed): a mismatch
from a library that claims exactness (tokforge, tiktoken, quicktok-v1, gigatoken, bpe-openai)
makes the command fail; libraries that do not claim it get their mismatch count reported.

    tokforge bench                          # the bundled sample, cl100k
    tokforge bench --quick                  # a first look: the first 16 documents, one pass
    tokforge bench -t o200k notes.txt code.py --json

Before it starts it says how long it should roughly take. The peers are optional:
``pip install 'tokforge[bench]'`` installs them all; without them tokforge is timed alone.

``benches/encode_bench.py`` uses the same machinery on the shared corpora, with batch and
worst-case runs on top.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..bench import harness
from ..bench.harness import CLOCKS, DOC_SIZE, INSTALL_PEERS, PEERS, Target
from ..encodings import resolve_tokenizer
from ..errors import TokforgeError
from ..sample import sample_path
from .options import Subparsers, add_quiet, add_tokenizer, positive_int

__all__ = ["register"]

#: ``--quick``: documents per file, and one round of cold processes and warm passes.
QUICK_DOCS = 16


def _announce(args: argparse.Namespace, files: list[str], modes: tuple[str, ...]) -> None:
    """Says, before anything runs, which peers are missing and roughly how long it takes."""
    peers = [p for p in PEERS if args.only is None or p.key in args.only]
    installed = [p for p in peers if harness.version(p.distribution) != "not installed"]
    missing = list(dict.fromkeys(p.distribution for p in peers if p not in installed))
    if missing:
        print(
            f"not installed: {', '.join(missing)}; to compare with them: {INSTALL_PEERS}",
            file=sys.stderr,
        )
    sizes = [Path(f).stat().st_size for f in files]
    if args.quick:
        sizes = [min(n, QUICK_DOCS * args.doc_size) for n in sizes]
    est = harness.estimate_seconds(
        len(installed),
        sum(sizes),
        modes=modes,
        repeat=args.repeat,
        cold_repeat=args.cold_repeat,
        hf_export=any(p.key in ("tokie", "tokenizers") for p in installed) and not args.hf_json,
    )
    quick = "" if args.quick else "; --quick for a first look in well under a minute"
    print(
        f"benchmarking {len(installed)} libraries on {len(files)} file(s), "
        f"{sum(sizes) / 1e6:.2f} MB, {' + '.join(modes)}: roughly {harness.duration(est)}"
        f"{quick}",
        file=sys.stderr,
        flush=True,
    )


def handler(args: argparse.Namespace) -> int:
    files = [str(f) for f in args.files] or [sample_path()]
    for f in files:
        if not Path(f).is_file():
            raise TokforgeError(f"{f}: no such file")
    target = Target.resolve(args.tokenizer)
    if target.name is None:
        # A tokenizer file: fail early, with tokforge's message, if it does not load.
        resolve_tokenizer(args.tokenizer)
    modes = ("cold", "warm") if args.mode == "both" else (args.mode,)
    if args.quick:
        args.repeat, args.cold_repeat = 1, 1
    if not (args.json or args.quiet):
        _announce(args, files, modes)
    log = None if args.json or args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    result = harness.compare(
        target,
        files,
        modes=modes,
        repeat=args.repeat,
        doc_size=args.doc_size,
        hf_json=args.hf_json,
        only=args.only,
        log=log,
        clock=args.clock,
        cold_repeat=args.cold_repeat,
        max_docs=QUICK_DOCS if args.quick else None,
    )
    if args.json:
        report = harness.report_json(target, result)
        report["clock"] = args.clock
        report["cold_repeat"] = args.cold_repeat
        print(json.dumps(report, indent=2))
    else:
        harness.print_report(
            target, result, args.doc_size, args.repeat, args.clock, args.cold_repeat
        )
    return 1 if result["failures"] else 0


def register(subparsers: Subparsers) -> None:
    """Adds the ``bench`` sub-command."""
    p = subparsers.add_parser(
        "bench",
        help="speed against installed peers on your text, ids checked",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("files", nargs="*", help="UTF-8 text files (default: the bundled sample)")
    add_tokenizer(p)
    p.add_argument("--mode", choices=["cold", "warm", "both"], default="both")
    p.add_argument("--repeat", type=positive_int, default=3, help="warm passes; the best counts")
    p.add_argument(
        "--cold-repeat",
        type=positive_int,
        default=1,
        help="rounds of cold processes, every library once a round; the fastest counts",
    )
    p.add_argument("--doc-size", type=positive_int, default=DOC_SIZE, help="bytes per document")
    p.add_argument(
        "--only", nargs="+", choices=[q.key for q in PEERS], help="run only these libraries"
    )
    p.add_argument("--hf-json", help="a tokenizer.json equivalent to --tokenizer (tokie, HF)")
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or the calling thread's CPU time (steadier on a shared machine)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"the first {QUICK_DOCS} documents of each file, one cold round and one warm pass "
        "(well under a minute)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    add_quiet(p, "no progress on stderr")
    p.set_defaults(func=handler)
