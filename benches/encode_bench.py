"""Encoding throughput of tokforge against tiktoken (and other installed peers) on the shared
corpora, with the same rank files and patterns, checking that every id is identical.

    python benches/encode_bench.py                 # cl100k_base and o200k_base, all corpora
    python benches/encode_bench.py --worst-cases   # also the adversarial 1 MB inputs

Per corpus, the text is cut into 4 KB documents (at character boundaries). "single" encodes the
documents one call at a time on one thread; "batch" hands all of them to the library's batch call
with --threads threads. Each figure is the best of --repeat runs, in MB/s of UTF-8 input. A
mismatch in ids prints the first differing document and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("TOKFORGE_SHARED") or HERE.parent.parent / "shared")
CORPORA = ["en_docs", "code_py", "man_de", "man_ja", "man_ru", "man_zh_CN"]


def documents(text: str, size: int = 4096) -> list[str]:
    data = text.encode("utf-8")
    out, start = [], 0
    while start < len(data):
        end = min(start + size, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end += 1
        out.append(data[start:end].decode("utf-8"))
        start = end
    return out


def best_of(repeat: int, fn, *args, **kwargs) -> float:
    """The shortest wall time of ``repeat`` calls of ``fn(*args, **kwargs)``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best


def each(fn, docs: list[str]) -> None:
    """Calls ``fn`` on every document, one call at a time."""
    for d in docs:
        fn(d)


def load_pair(name: str):
    import tiktoken
    import tiktoken.load
    import tokforge
    from tokforge.registry import ENCODINGS

    spec = ENCODINGS[name]
    path = SHARED / "vocabs" / f"{name}.tiktoken"
    ref = tiktoken.Encoding(
        name,
        pat_str=tokforge._core.preset_pattern(spec.preset),
        mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(path)),
        special_tokens=spec.special_tokens,
    )
    return tokforge.get_encoding(name, path), ref


def fail(msg: str) -> None:
    print(f"\nID MISMATCH: {msg}", file=sys.stderr)
    sys.exit(1)


def bench_corpora(args: argparse.Namespace) -> list[dict]:
    rows = []
    for name in args.encodings:
        tok, ref = load_pair(name)
        for corpus in args.corpora:
            text = (SHARED / "corpora" / f"{corpus}.txt").read_text(encoding="utf-8")
            docs = documents(text)
            mb = len(text.encode("utf-8")) / 1e6
            expected = [ref.encode_ordinary(d) for d in docs]
            got = [tok.encode_ordinary(d) for d in docs]
            for i, (a, b) in enumerate(zip(expected, got, strict=True)):
                if a != b:
                    fail(f"{name} {corpus} document {i}: {docs[i][:80]!r}")
            if tok.encode_ordinary_batch(docs, num_threads=args.threads) != expected:
                fail(f"{name} {corpus}: batch differs")
            arr = [tok.encode_to_numpy(d) for d in docs[:50]]
            if [a.tolist() for a in arr] != expected[:50]:
                fail(f"{name} {corpus}: encode_to_numpy differs")
            n, th = args.repeat, args.threads
            t_ref = best_of(n, each, ref.encode_ordinary, docs)
            t_tok = best_of(n, each, tok.encode_ordinary, docs)
            t_np = best_of(n, each, tok.encode_to_numpy, docs)
            t_refb = best_of(n, ref.encode_ordinary_batch, docs, num_threads=th)
            t_tokb = best_of(n, tok.encode_ordinary_batch, docs, num_threads=th)
            t_flat = best_of(n, tok.encode_batch_to_numpy, docs, num_threads=th)
            rows.append(
                {
                    "encoding": name,
                    "corpus": corpus,
                    "tiktoken": mb / t_ref,
                    "tokforge": mb / t_tok,
                    "tokforge_numpy": mb / t_np,
                    "tiktoken_batch": mb / t_refb,
                    "tokforge_batch": mb / t_tokb,
                    "tokforge_batch_flat": mb / t_flat,
                }
            )
            r = rows[-1]
            print(
                f"{name:<12} {corpus:<10} {r['tiktoken']:>9.1f} {r['tokforge']:>9.1f} "
                f"{r['tokforge_numpy']:>9.1f} {r['tokforge'] / r['tiktoken']:>6.2f}x "
                f"{r['tiktoken_batch']:>10.1f} {r['tokforge_batch']:>10.1f} "
                f"{r['tokforge_batch_flat']:>10.1f} "
                f"{r['tokforge_batch'] / r['tiktoken_batch']:>6.2f}x",
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
    for name in args.encodings:
        tok, _ = load_pair(name)
        pat = tok.pattern
        for label, text in cases.items():
            mb = len(text.encode("utf-8")) / 1e6
            t = best_of(1, tok.encode_ordinary, text)
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
    del tokforge
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
    same = "identical ids" if res["ids"] == ids else "IDS DIFFER"
    if res["ids"] != ids:
        fail(f"{name} {label}: tiktoken ids differ")
    return f"{mb / res['seconds']:.1f} MB/s, {same}"


def bench_scaling(args: argparse.Namespace) -> list[dict]:
    """Time of one long piece as it doubles in size: near-linear means the ratio stays ~2."""
    tok, _ = load_pair(args.encodings[0])
    rng = random.Random(1)
    rows = []
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
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worst-cases", action="store_true")
    ap.add_argument("--scaling", action="store_true", help="time long pieces of doubling size")
    ap.add_argument("--skip-corpora", action="store_true")
    ap.add_argument(
        "--tiktoken-worst",
        action="store_true",
        help="also run tiktoken on the worst cases, each in a child process",
    )
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()

    import tiktoken
    import tokforge

    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, tokforge {tokforge.__version__}, "
        f"tiktoken {tiktoken.__version__}"
    )
    print("MB/s of UTF-8 input, best of", args.repeat, "runs; 4 KB documents\n")
    print(
        f"{'encoding':<12} {'corpus':<10} {'tiktoken':>9} {'tokforge':>9} {'tf numpy':>9} "
        f"{'ratio':>7} {'tt batch':>10} {'tf batch':>10} {'tf flat':>10} {'ratio':>7}"
    )
    rows = [] if args.skip_corpora else bench_corpora(args)
    worst = bench_worst(args) if args.worst_cases else []
    scaling = []
    if args.scaling:
        print("\nOne long piece, doubling (near-linear time = x2 per doubling):")
        scaling = bench_scaling(args)
    if args.json:
        out = {"corpora": rows, "worst": worst, "scaling": scaling}
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
