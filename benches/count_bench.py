"""Counting throughput with 1 and 2 Dask worker processes on the shared corpora.

    python benches/count_bench.py [--copies 4] [--repeat 2] [--json]

The six shared corpora (24 MB) are written ``--copies`` times as separate files (so there is
enough work to share), then counted by ``training.distributed.count`` on a LocalCluster with 1
and with 2 worker processes (1 thread each, one file per task, counts merged in a tree on the
workers), and once in this process with ``PretokenCounter.add_files`` on 1 thread for reference.
Prints MB/s of text, the counts' size, and the merge cost, and checks the counts agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tokforge import _core
from tokforge.training import distributed as td

CORPORA = ["en_docs", "code_py", "man_de", "man_ja", "man_ru", "man_zh_CN"]


def _shared() -> Path:
    return Path(os.environ.get("TOKFORGE_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=4, help="copies of the 24 MB (default: 4)")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per cell")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    tmp = Path(tempfile.mkdtemp(prefix="tf-count-bench-"))
    try:
        files = []
        for c in range(args.copies):
            for name in CORPORA:
                dst = tmp / f"{c}-{name}.txt"
                shutil.copyfile(_shared() / "corpora" / f"{name}.txt", dst)
                files.append(dst)
        total = sum(f.stat().st_size for f in files)
        rows = []

        def best(fn):
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t)
            return min(times), out

        secs, ref = best(lambda: _local([str(f) for f in files]))
        rows.append(("in-process, 1 thread", secs))
        blob = ref.to_counts_bytes()
        t = time.perf_counter()
        _core.PretokenCounter.from_counts_bytes([blob] * 8)
        merge8 = (time.perf_counter() - t) / 8
        for workers in (1, 2):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=50,
            )
            client = Client(cluster)
            try:
                td.count(files[:2], client)  # warm the workers (imports)
                secs, got = best(lambda client=client: td.count(files, client))
            finally:
                client.close()
                cluster.close()
            if got.counts() != ref.counts():
                print("counts differ!", file=sys.stderr)
                return 1
            rows.append((f"Dask, {workers} worker process(es)", secs))
        result = {
            "files": len(files),
            "mb": total / 1e6,
            "distinct": ref.num_distinct,
            "counts_file_mb": len(blob) / 1e6,
            "merge_one_counts_file_s": merge8,
            "cpus": os.cpu_count(),
            "rows": [{"setup": s, "seconds": t, "mb_per_s": total / 1e6 / t} for s, t in rows],
        }
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            print(
                f"{len(files)} files, {total / 1e6:.0f} MB, {ref.num_distinct} distinct "
                f"pretokens, counts file {len(blob) / 1e6:.2f} MB, {os.cpu_count()} cores"
            )
            print("| setup | seconds | MB/s |\n|---|---|---|")
            for s, t in rows:
                print(f"| {s} | {t:.2f} | {total / 1e6 / t:.1f} |")
            print(f"decode + add one counts file: {merge8 * 1000:.0f} ms")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _local(files: list[str]) -> _core.PretokenCounter:
    c = _core.PretokenCounter(preset="cl100k", num_threads=1)
    c.add_files(files)
    return c


if __name__ == "__main__":
    sys.exit(main())
