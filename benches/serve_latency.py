"""How fast ``tokforge serve`` starts and answers: the time from launching
``python -m tokforge.serve --port 0`` until it prints its URL, and the time of a POST
/api/tokenize of a 1 MB text (the limit) with cl100k_base and o200k_base, over HTTP, body
received and parsed, after one warm-up request that loads the tokenizers: as the page asks
(``detail_limit`` 3000: all ids, per-token details for the tokens it draws) and with every
token's details.

Usage: TOKFORGE_SHARED=/work/shared python3 benches/serve_latency.py [corpus name ...]
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def start() -> tuple[subprocess.Popen[str], int, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokforge.serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    return proc, port, elapsed


def post(port: int, body: dict[str, object]) -> tuple[float, int, dict[str, object]]:
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/api/tokenize", data, {"Content-Type": "application/json"})
    raw = conn.getresponse().read()
    answer = json.loads(raw)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed, len(raw), answer


def main() -> None:
    shared = Path(os.environ.get("TOKFORGE_SHARED", "../shared"))
    starts = []
    for _ in range(5):
        proc, port, elapsed = start()
        starts.append(elapsed)
        proc.terminate()
        proc.wait()
    print(f"startup (launch to URL printed), 5 runs: {', '.join(f'{s:.3f}' for s in starts)} s")
    proc, port, _ = start()
    try:
        post(port, {"text": "warm up", "tokenizers": ["cl100k_base", "o200k_base"]})
        for name in sys.argv[1:] or ["en_docs", "code_py", "man_ja"]:
            text = (shared / "corpora" / f"{name}.txt").read_text(encoding="utf-8")
            text = text.encode()[:1_000_000].decode("utf-8", "ignore")
            for label, extra in (("page", {"detail_limit": 3000}), ("full detail", {})):
                times = []
                for _ in range(3):
                    request = {"text": text, "tokenizers": ["cl100k_base", "o200k_base"], **extra}
                    elapsed, size, answer = post(port, request)
                    times.append(elapsed)
                counts = [r["n_tokens"] for r in answer["results"]]  # type: ignore[index]
                print(
                    f"{name} ({label}): {len(text.encode()):,} bytes, tokens {counts}, answer "
                    f"{size / 1e6:.1f} MB, round trip {', '.join(f'{t:.3f}' for t in times)} s"
                )
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
