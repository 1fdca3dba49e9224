"""How much the KV cache buys: tokforge.nn generation with and without it.

    python benches/nn_bench.py                 # 4 layers, d_model 256, 256 new tokens
    python benches/nn_bench.py --new-tokens 64 # a quicker run

Without the cache every step runs the whole sequence through the model again, so step ``t``
costs about ``t`` times a cached step and the total grows with the square of the length; with
the cache each step feeds one token and attends over stored keys and values. Both runs are
greedy from the same prompt and must produce the same tokens (checked). Only NumPy is needed;
the weights are random, which does not change the cost.

The table has one row per vocabulary size because the output projection (``d_model x vocab``)
is the same work in both modes: one row of logits per step. At GPT-2's 50257 tokens that
matrix is 103 MB of float64 read once per token, which bounds the cached step and so the
ratio; the smaller vocabulary shows the cache's effect on the transformer blocks themselves.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

# BLAS threads are fixed before NumPy loads (it reads these once). One thread by default: on a
# shared 2-core machine, threaded BLAS on tiny matrices mostly measures the scheduler.
# Override with --threads=N (or by setting the variables yourself).
if __name__ == "__main__":
    _threads = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), "1")
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

import numpy as np
from tokforge.nn import Config, Transformer

# Wall-clock by default. On a machine shared with other jobs, --clock cpu counts only this
# process's CPU time, which with one BLAS thread is the work itself and varies far less.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def timed(model: Transformer, prompt: list[int], n: int, use_cache: bool) -> tuple[float, list]:
    start = clock()
    out = model.generate(prompt, n, temperature=0, use_cache=use_cache, eos_id=None)
    return clock() - start, list(out)


def best_of(repeat: int, model: Transformer, prompt: list[int], n: int, use_cache: bool):
    """The fastest of ``repeat`` runs (the least disturbed by other work on the machine)."""
    return min(timed(model, prompt, n, use_cache) for _ in range(max(repeat, 1)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument(
        "--vocab",
        type=int,
        nargs="+",
        default=[8192, 50257],
        help="vocabulary sizes to run (default: a small BPE's 8192 and GPT-2's 50257)",
    )
    ap.add_argument("--repeat", type=int, default=2, help="runs per mode; the best one counts")
    ap.add_argument("--threads", default="1", help="BLAS threads, given as --threads=N")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="default wall")
    args = ap.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]

    n = args.new_tokens
    prompt_len = args.prompt_tokens
    rows = []
    config = None
    for vocab in args.vocab:
        config = Config(
            vocab_size=vocab,
            d_model=args.d_model,
            n_layers=args.layers,
            n_heads=args.heads,
            max_seq_len=prompt_len + n,
        )
        model = Transformer(config, seed=0)
        prompt = np.random.default_rng(0).integers(0, vocab, prompt_len).tolist()
        timed(model, prompt, 4, use_cache=True)  # warm-up: page in the weights
        cached_s, cached = best_of(args.repeat, model, prompt, n, use_cache=True)
        fresh_s, fresh = best_of(args.repeat, model, prompt, n, use_cache=False)
        if cached != fresh:
            print(f"error: vocab {vocab}: cached and uncached generation disagree", file=sys.stderr)
            return 1
        rows.append((vocab, cached_s, fresh_s))

    assert config is not None
    env = os.environ
    threads = env.get("OPENBLAS_NUM_THREADS") or env.get("OMP_NUM_THREADS") or "default"
    print(
        f"tokforge.nn generation: {config.n_layers} layers, d_model {config.d_model}, "
        f"{config.n_heads} heads, d_ff {config.d_ff}, float64, {config.activation}"
    )
    print(
        f"prompt {prompt_len} tokens, {n} new tokens, greedy, best of {args.repeat}, "
        f"{args.clock} clock; "
        f"numpy {np.__version__}, python {platform.python_version()}, "
        f"{os.cpu_count()} cpus, BLAS threads {threads}"
    )
    print()
    print(
        f"{'vocab':>7} | {'KV cache s':>10} {'tokens/s':>9} | {'no cache s':>10} {'tokens/s':>9}"
        f" | {'speed-up':>8}"
    )
    for vocab, cached_s, fresh_s in rows:
        print(
            f"{vocab:>7} | {cached_s:>10.3f} {n / cached_s:>9.1f} | {fresh_s:>10.3f} "
            f"{n / fresh_s:>9.1f} | {fresh_s / cached_s:>7.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
