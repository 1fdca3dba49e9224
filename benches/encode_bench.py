"""Encoding speed of tokforge against every installed peer on the shared corpora, same rank files
and patterns, with every id checked against tiktoken.

    python benches/encode_bench.py                      # cl100k_base and o200k_base, cold + warm
    python benches/encode_bench.py --quick              # a first look, under a minute
    python benches/encode_bench.py --batch --worst-cases
    python benches/encode_bench.py --encodings cl100k_base --corpora en_docs man_ja --json out.json

Per corpus, the text is cut into ~4 KB documents (at character boundaries), encoded one call at
a time on one thread:

- cold: one fresh process per library and corpus loads the tokenizer, makes one call on a
  one-letter text (so imports and deferred set-up are not counted), then encodes each document
  once; MB/s of the encode calls' time. With --cold-repeat N, N
  rounds each run every library on every corpus once, and each cell keeps its fastest process.
- warm: in this process, the best of --repeat passes over the same documents.

Libraries (each run only when installed; see ``tokforge.bench.harness.PEERS``): tiktoken (the
reference, ``encode_ordinary``), tokforge (``encode_ordinary`` -> list, and
``encode_ordinary_to_numpy`` -> array), quicktok-v1, gigatoken (array output), bpe-openai; tokie
and HF tokenizers through a tokenizer.json: ``--hf-json``, or else tokforge's own export of the
encoding (``Tokenizer.to_hf``). A library that claims exact tiktoken ids and differs on any
document makes the run fail (exit 1) after printing the tables; others get their mismatch count.

--batch: all documents of a corpus in one batch call with --threads threads (tiktoken's
``encode_ordinary_batch`` against tokforge's ``encode_ordinary_batch`` and
``encode_batch_to_numpy``, ids checked). --worst-cases: the adversarial 1 MB inputs,
in MB/s, with tiktoken's ids from a child process where tiktoken survives them
(--tiktoken-worst). --scaling: one long piece as it doubles.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from tokforge.bench import harness as bench_cli
from tokforge.bench.harness import PEERS, Target, documents

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("TOKFORGE_SHARED") or HERE.parent.parent / "shared")
CORPORA = ["en_docs", "code_py", "man_de", "man_ja", "man_ru", "man_zh_CN"]
QUICK_CORPORA = ["en_docs", "man_ja"]
QUICK_DOCS = 32


CLOCK = time.perf_counter


def best_of(repeat: int, fn, *args, **kwargs) -> float:
    """The shortest time (wall, or CPU with --clock cpu) of ``repeat`` calls of
    ``fn(*args, **kwargs)``. Batch calls are always timed by the wall clock."""
    clock = time.perf_counter if "num_threads" in kwargs else CLOCK
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn(*args, **kwargs)
        best = min(best, clock() - t0)
    return best


def target(name: str) -> Target:
    return Target(name, name, str(SHARED / "vocabs" / f"{name}.tiktoken"))


def fail(msg: str) -> None:
    print(f"\nID MISMATCH: {msg}", file=sys.stderr)
    sys.exit(1)


def announce(args: argparse.Namespace) -> None:
    """Says, before anything runs, which peers are missing and roughly how long the corpus tables
    take (batch, worst-case and scaling runs come on top)."""
    only = args.only or [p.key for p in PEERS]
    installed = [
        p for p in PEERS if p.key in only and bench_cli.version(p.distribution) != "not installed"
    ]
    missing = [p.distribution for p in PEERS if p.key in only and p not in installed]
    if missing:
        print(
            f"not installed: {', '.join(dict.fromkeys(missing))}; "
            f"to compare with them: {bench_cli.INSTALL_PEERS}",
            file=sys.stderr,
        )
    if args.skip_corpora:
        return
    sizes = [(SHARED / "corpora" / f"{c}.txt").stat().st_size for c in args.corpora]
    if args.max_docs is not None:
        sizes = [min(n, args.max_docs * 4096) for n in sizes]
    est = len(args.encodings) * bench_cli.estimate_seconds(
        len(installed) * len(sizes),
        sum(sizes) // len(sizes),
        modes=args.modes,
        repeat=args.repeat,
        cold_repeat=args.cold_repeat,
    )
    quick = "" if args.quick else "; --quick for a first look in under a minute"
    print(
        f"corpus tables: {len(installed)} libraries, {len(args.encodings)} encoding(s), "
        f"{len(sizes)} corpora of {sum(sizes) / 1e6:.1f} MB: roughly {bench_cli.duration(est)}"
        f"{quick}",
        file=sys.stderr,
        flush=True,
    )


def bench_corpora(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """Cold and warm tables per encoding; returns the JSON rows and the failures."""
    rows: list[dict] = []
    failures: list[str] = []
    only = args.only or [p.key for p in PEERS]
    for name in args.encodings:
        t = target(name)
        files = [str(SHARED / "corpora" / f"{c}.txt") for c in args.corpora]
        runs: list[bench_cli.Run] = []
        skipped: dict[str, str] = {}
        loaded = {}
        for p in PEERS:
            if p.key not in only:
                continue
            try:
                loaded[p.key] = p.load(t, args.hf_json)
            except bench_cli.Unavailable as e:
                skipped[p.key] = str(e)
        peers = [p for p in PEERS if p.key in loaded]
        if "cold" in args.modes:
            # Round-robin (see `run_cold_rounds`): this machine's cold figures move 5-20% between
            # minutes, and a slow one should fall on every library alike.
            def finished(r: bench_cli.Run, name: str = name) -> None:
                print(
                    f"  cold {name} {r.peer:<16} {Path(r.file).stem:<10} {r.mb_s:8.1f} MB/s",
                    file=sys.stderr,
                    flush=True,
                )

            runs += bench_cli.run_cold_rounds(
                peers,
                t,
                [[f] for f in files],
                args.cold_repeat,
                skipped,
                hf_json=args.hf_json,
                clock=args.clock,
                finished=finished,
                max_docs=args.max_docs,
            )
        if "warm" in args.modes:
            for f in files:
                docs = documents(Path(f).read_text(encoding="utf-8"))[: args.max_docs]
                for p in peers:
                    if p.key in skipped:
                        continue
                    r = bench_cli.run_warm(loaded[p.key], p, f, docs, args.repeat, args.clock)
                    runs.append(r)
                    print(
                        f"  warm {name} {p.key:<16} {Path(f).stem:<10} {r.mb_s:8.1f} MB/s",
                        file=sys.stderr,
                        flush=True,
                    )
        active = [p.key for p in peers if p.key not in skipped]
        reference = "tiktoken" if "tiktoken" in active else "tokforge"
        verdict, fails = bench_cli.check_ids(runs, reference)
        failures += [f"{name}: {x}" for x in fails]
        print(
            f"\n{name}: MB/s of {args.clock} time (ratio to {reference}), 4 KB documents, "
            "one thread"
        )
        print(bench_cli.format_table(runs, active, reference))
        for k, v in verdict.items():
            print(f"ids: {k}: {v}")
        for k, why in skipped.items():
            print(f"skipped: {k}: {why}")
        ref = {(r.mode, r.file): r for r in runs if r.peer == reference}
        rows += [
            {
                "encoding": name,
                "mode": r.mode,
                "corpus": Path(r.file).stem,
                "library": r.peer,
                "mb_s": r.mb_s,
                "ratio": r.mb_s / ref[(r.mode, r.file)].mb_s if (r.mode, r.file) in ref else None,
            }
            for r in runs
        ]
    return rows, failures


def bench_batch(args: argparse.Namespace) -> list[dict]:
    """Batch calls with --threads threads: tiktoken against tokforge (lists and flat array)."""
    import numpy as np
    import tokforge

    rows = []
    print(f"\nbatch, {args.threads} threads, MB/s (ratio to tiktoken's encode_ordinary_batch)")
    print(f"{'encoding':<12} {'corpus':<10} {'tiktoken':>9} {'tokforge':>16} {'tf flat':>16}")
    for name in args.encodings:
        t = target(name)
        ref = bench_cli._tiktoken_encoding(t)
        tok = tokforge.get_encoding(name, t.rank_file)
        for corpus in args.corpora:
            text = (SHARED / "corpora" / f"{corpus}.txt").read_text(encoding="utf-8")
            docs = documents(text)
            mb = len(text.encode("utf-8")) / 1e6
            th = args.threads
            expected = ref.encode_ordinary_batch(docs, num_threads=th)
            if tok.encode_ordinary_batch(docs, num_threads=th) != expected:
                fail(f"{name} {corpus}: encode_ordinary_batch differs")
            flat, offsets = tok.encode_batch_to_numpy(docs, num_threads=th, disallowed_special=())
            if not np.array_equal(flat, np.fromiter((i for e in expected for i in e), np.uint32)):
                fail(f"{name} {corpus}: encode_batch_to_numpy differs")
            if offsets[-1] != len(flat) or len(offsets) != len(docs) + 1:
                fail(f"{name} {corpus}: bad offsets")
            n = args.repeat
            t_ref = best_of(n, ref.encode_ordinary_batch, docs, num_threads=th)
            t_tok = best_of(n, tok.encode_ordinary_batch, docs, num_threads=th)
            t_flat = best_of(
                n, tok.encode_batch_to_numpy, docs, num_threads=th, disallowed_special=()
            )
            r = {
                "encoding": name,
                "corpus": corpus,
                "threads": th,
                "tiktoken": mb / t_ref,
                "tokforge": mb / t_tok,
                "tokforge_flat": mb / t_flat,
            }
            rows.append(r)
            print(
                f"{name:<12} {corpus:<10} {r['tiktoken']:>9.1f} "
                f"{r['tokforge']:>9.1f} ({r['tokforge'] / r['tiktoken']:>4.1f}x) "
                f"{r['tokforge_flat']:>9.1f} ({r['tokforge_flat'] / r['tiktoken']:>4.1f}x)",
                flush=True,
            )
    return rows


def worst_cases() -> dict[str, str]:
    rng = random.Random(0)
    n = 1_000_000
    return {
        "1M 'a'": "a" * n,
        "1M random letters": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)),
        "1M digits": "".join(rng.choice("0123456789") for _ in range(n)),
        "1 MB CJK": "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(n // 3)),
        "1 MB whitespace": "".join(rng.choice(" \t\n\r") for _ in range(n)),
        "x + 1 MB spaces + y": "x" + " " * n + "y",
    }


_CHILD = """
import sys, time, json, tiktoken, tiktoken.load
sys.setrecursionlimit(10000)
name, pat, path, which = sys.argv[1:5]
text = __import__("benches_worst").CASES[which]
enc = tiktoken.Encoding(name, pat_str=pat, mergeable_ranks=tiktoken.load.load_tiktoken_bpe(path),
                        special_tokens={})
t0 = time.perf_counter(); ids = enc.encode_ordinary(text); dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "ids": ids}))
"""


def bench_worst(args: argparse.Namespace) -> list[dict]:
    import tokforge

    cases = worst_cases()
    rows = []
    print(f"\nworst cases, one call each, MB/s ({args.clock} time)")
    for name in args.encodings:
        tok = tokforge.get_encoding(name, target(name).rank_file)
        pat = tok.pattern
        for label, text in cases.items():
            mb = len(text.encode("utf-8")) / 1e6
            t = best_of(args.repeat, tok.encode_ordinary, text)
            ids = tok.encode_ordinary(text)
            ok = tok.decode(ids) == text
            ref_result = "skipped"
            if args.tiktoken_worst:
                ref_result = _tiktoken_child(name, pat, label, text, ids, args.timeout)
            rows.append(
                {
                    "encoding": name,
                    "case": label,
                    "tokforge_mb_s": mb / t,
                    "round_trip": ok,
                    "tiktoken": ref_result,
                }
            )
            print(
                f"{name:<12} {label:<22} tokforge {mb / t:>8.1f} MB/s  round trip "
                f"{'ok' if ok else 'FAILED'}  tiktoken: {ref_result}",
                flush=True,
            )
            if not ok:
                fail(f"{name} {label}: round trip")
    return rows


def _tiktoken_child(
    name: str, pat: str, label: str, text: str, ids: list[int], timeout: float
) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        Path(d, "benches_worst.py").write_text(
            "import json\nCASES = json.load(open(__file__[:-3] + '.json'))\n"
        )
        Path(d, "benches_worst.json").write_text(json.dumps({label: text}))
        path = str(SHARED / "vocabs" / f"{name}.tiktoken")
        try:
            p = subprocess.run(
                [sys.executable, "-c", _CHILD, name, pat, path, label],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=d,
                env={**os.environ, "PYTHONPATH": d},
            )
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout:.0f} s"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return f"crashed (exit {p.returncode}: {last[:60]})"
    res = json.loads(p.stdout)
    mb = len(text.encode("utf-8")) / 1e6
    if res["ids"] != ids:
        fail(f"{name} {label}: tiktoken ids differ")
    return f"{mb / res['seconds']:.1f} MB/s, identical ids"


def bench_scaling(args: argparse.Namespace) -> list[dict]:
    """Time of one long piece as it doubles in size: near-linear means the ratio stays ~2."""
    import tokforge

    name = args.encodings[0]
    tok = tokforge.get_encoding(name, target(name).rank_file)
    rng = random.Random(1)
    rows = []
    print("\none long piece, doubling (near-linear time = x2 per doubling):")
    for label, make in [
        ("'a' * n", lambda n: "a" * n),
        (
            "random letters",
            lambda n: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)),
        ),
    ]:
        prev = None
        for n in (125_000, 250_000, 500_000, 1_000_000, 2_000_000):
            text = make(n)
            t = best_of(2, tok.encode_ordinary, text)
            growth = "" if prev is None else f"  x{t / prev:.2f} for x2 input"
            print(f"{label:<16} {n:>9,} bytes  {t * 1000:8.1f} ms  {n / 1e6 / t:6.1f} MB/s{growth}")
            rows.append({"case": label, "bytes": n, "seconds": t})
            prev = t
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--encodings", nargs="+", default=["cl100k_base", "o200k_base"])
    ap.add_argument("--corpora", nargs="+", default=CORPORA)
    ap.add_argument("--modes", nargs="+", choices=["cold", "warm"], default=["cold", "warm"])
    ap.add_argument("--only", nargs="+", choices=[p.key for p in PEERS], help="these libraries")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3, help="warm passes (the best counts)")
    ap.add_argument(
        "--cold-repeat",
        type=int,
        default=1,
        help="rounds of cold processes, every library and corpus once a round (the best counts)",
    )
    ap.add_argument("--hf-json", help="a tokenizer.json equivalent to the encoding (tokie, HF)")
    ap.add_argument("--batch", action="store_true", help="also batch calls on --threads threads")
    ap.add_argument("--worst-cases", action="store_true")
    ap.add_argument("--scaling", action="store_true", help="time long pieces of doubling size")
    ap.add_argument("--skip-corpora", action="store_true")
    ap.add_argument(
        "--tiktoken-worst",
        action="store_true",
        help="also run tiktoken on the worst cases, each in a child process",
    )
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument(
        "--clock",
        choices=sorted(bench_cli.CLOCKS),
        default="wall",
        help="single-thread runs timed by wall time or by the calling thread's CPU time "
        "(steadier on a shared machine); batch runs always by wall time",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"a first look: cl100k_base on {', '.join(QUICK_CORPORA)}, the first "
        f"{QUICK_DOCS} documents of each, one cold round and one warm pass (under a minute)",
    )
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    args.max_docs = None
    if args.quick:
        args.encodings, args.corpora = ["cl100k_base"], QUICK_CORPORA
        args.repeat, args.cold_repeat, args.max_docs = 1, 1, QUICK_DOCS
    global CLOCK
    CLOCK = bench_cli.CLOCKS[args.clock]
    if len(args.encodings) > 1 and args.hf_json:
        ap.error("--hf-json describes one encoding: pass a single --encodings")

    print(f"machine: {bench_cli.machine_line()}")
    names = dict.fromkeys(p.distribution for p in PEERS)
    print(
        "versions: "
        + ", ".join(f"{n} {bench_cli.version(n)}" for n in names)
        + f"; command: python benches/{Path(__file__).name} {' '.join(sys.argv[1:])}"
    )
    announce(args)
    failures: list[str] = []
    rows: list[dict] = []
    if not args.skip_corpora:
        rows, failures = bench_corpora(args)
    batch = bench_batch(args) if args.batch else []
    worst = bench_worst(args) if args.worst_cases else []
    scaling = bench_scaling(args) if args.scaling else []
    if args.json:
        out = {
            "clock": args.clock,
            "machine": bench_cli.machine_line(),
            "versions": {n: bench_cli.version(n) for n in names},
            "corpora": rows,
            "batch": batch,
            "worst": worst,
            "scaling": scaling,
            "failures": failures,
        }
        Path(args.json).write_text(json.dumps(out, indent=2))
    if failures:
        fail("; ".join(failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
