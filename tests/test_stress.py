"""Stress: 16 threads share one tokenizer for a fixed time, each encoding, decoding,
batch-encoding, streaming and pickling, and every result must equal the single-threaded one;
and memory stays flat over a million short calls.

Free-threaded CPython (3.13t) is not installed on the project's machines; where the interpreter
is free-threaded, the same test runs without the GIL (``sys._is_gil_enabled()`` is reported in the
test output)."""

from __future__ import annotations

import gc
import os
import pickle
import sys
import threading
import time
from pathlib import Path

import pytest
import tokforge
from conftest import CORPORA, corpus_text, documents, tokforge_encoding

THREADS = 16
SECONDS = float(os.environ.get("TOKFORGE_STRESS_SECONDS", "8"))


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path("/proc/self/statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def samples() -> list[str]:
    out = []
    for name in CORPORA:
        out.extend(documents(corpus_text(name), 2048)[:12])
    out += ["", " ", "<|endoftext|>", "a<|endoftext|>b", "\U0001f600" * 50, "x" * 5000]
    return out


def test_sixteen_threads_match_single_threaded() -> None:
    enc = tokforge_encoding("cl100k_base")
    texts = samples()
    want_ids = [enc.encode(t, allowed_special="all") for t in texts]
    want_bytes = [enc.decode_bytes(ids) for ids in want_ids]
    blob = pickle.dumps(enc)
    stop = time.monotonic() + SECONDS
    errors: list[str] = []
    counts = [0] * THREADS

    def worker(k: int) -> None:
        i = k
        try:
            while time.monotonic() < stop:
                j = i % len(texts)
                op = i % 5
                if op == 0:
                    got = enc.encode(texts[j], allowed_special="all")
                    if got != want_ids[j]:
                        errors.append(f"thread {k}: encode of text {j} differs")
                elif op == 1:
                    if enc.decode_bytes(want_ids[j]) != want_bytes[j]:
                        errors.append(f"thread {k}: decode of text {j} differs")
                elif op == 2:
                    sel = [(j + d) % len(texts) for d in range(4)]
                    got_batch = enc.encode_batch(
                        [texts[s] for s in sel], allowed_special="all", num_threads=2
                    )
                    if got_batch != [want_ids[s] for s in sel]:
                        errors.append(f"thread {k}: encode_batch at {j} differs")
                elif op == 3:
                    d = enc.decoder_stream()
                    text = "".join(d.push(t) for t in want_ids[j]) + d.finish()
                    if text != want_bytes[j].decode("utf-8", "replace"):
                        errors.append(f"thread {k}: stream decode of text {j} differs")
                else:
                    copy = pickle.loads(blob if i % 2 else pickle.dumps(enc))
                    if copy.encode(texts[j], allowed_special="all") != want_ids[j]:
                        errors.append(f"thread {k}: pickled copy differs on text {j}")
                counts[k] += 1
                i += 7
        except Exception as e:
            errors.append(f"thread {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert errors == [], errors[:5]
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"\n{THREADS} threads, {SECONDS:.0f} s, {sum(counts)} calls, GIL enabled: {gil}")
    assert all(c > 0 for c in counts)


def test_threads_share_a_callable_pretokenizer() -> None:
    """A Python callable pretokenizer re-enters the interpreter from Rust on every thread."""
    tok = tokforge.Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer=_keep_spaces)
    text = "low lower lowest " * 50
    want = tok.encode(text)
    errors: list[str] = []

    def worker() -> None:
        for _ in range(200):
            if tok.encode(text) != want:
                errors.append("differs")
            if tok.encode_batch([text, text], num_threads=2) != [want, want]:
                errors.append("batch differs")

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


def _keep_spaces(s: str) -> list[str]:
    out, cur = [], ""
    for ch in s:
        if ch == " " and cur:
            out.append(cur)
            cur = ""
        cur += ch
    return out + ([cur] if cur else [])


@pytest.mark.slow
def test_memory_flat_over_a_million_calls() -> None:
    """1M short calls (encode, encode with specials, decode, single-token decode, stream push,
    errors raised and caught): RSS may grow by a few MB of allocator noise, not by a leak (a leak
    of even 16 bytes per call would be 16 MB)."""
    enc = tokforge_encoding("cl100k_base")
    ids = enc.encode("hi there")
    bad = [enc.n_vocab + 10]

    def batch(n: int) -> None:
        for i in range(n):
            op = i % 8
            if op == 0:
                enc.encode("hi there")
            elif op == 1:
                enc.encode("a<|endoftext|>", allowed_special="all")
            elif op == 2:
                enc.decode(ids)
            elif op == 3:
                enc.decode_single_token_bytes(ids[0])
            elif op == 4:
                enc.encode_ordinary("x")
            elif op == 5:
                try:
                    enc.decode(bad)
                except tokforge.UnknownTokenError:
                    pass
            elif op == 6:
                try:
                    enc.encode("<|endoftext|>")
                except ValueError:
                    pass
            else:
                d = enc.decoder_stream()
                d.push(ids[0])

    batch(100_000)  # warm up: caches, allocator arenas
    gc.collect()
    before = rss_bytes()
    start = time.monotonic()
    for _ in range(9):
        batch(100_000)
        assert time.monotonic() - start < 300, "hang guard"
    gc.collect()
    grown = rss_bytes() - before
    print(f"\n1M calls in {time.monotonic() - start:.1f} s, RSS grew {grown / 1e6:.2f} MB")
    assert grown < 8_000_000, f"RSS grew {grown / 1e6:.1f} MB over 900k calls: a leak?"
