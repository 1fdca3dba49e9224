"""The core's robustness classes: merge chains in every loader, normalizers that multiply
text, added tokens that take a model token's id, format detection past the first bytes,
decoding NumPy arrays without a list, and encoding in a child forked while threads encode.

Bounds are checked by outcome, never by a stopwatch: loaders run in a child process with a
capped address space (an allocation past it aborts the child, which fails the test) and a
generous wait that only catches a hang."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tokforge
from tokforge import Tokenizer
from tokforge.errors import TokforgeError, UnknownTokenError, VocabFileError

# A child's address space: Python, NumPy and the extension take well under 1 GB; a 100k-merge
# chain's tokens alone would be 5 GB.
CHILD_MEMORY = 3 << 30
# Only a hang reaches this.
CHILD_WAIT = 300


def gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> character table, from its published definition."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def rank_rule(ranks: dict[bytes, int], text: bytes) -> list[int]:
    """tiktoken's rule from its definition: merge the adjacent pair whose join has the lowest
    rank, leftmost among equals, until none is a token."""
    parts = [bytes([b]) for b in text]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            return [ranks[p] for p in parts]
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


def merge_list_rule(ids: dict[str, int], merges: list[tuple[str, str]], text: str) -> list[int]:
    """tokenizers' rule from its definition: apply the adjacent pair listed earliest in the
    merge list, leftmost among equals."""
    order = {m: k for k, m in enumerate(merges)}
    parts = list(text)
    while True:
        found = [
            (order[(a, b)], i)
            for i, (a, b) in enumerate(itertools.pairwise(parts))
            if (a, b) in order
        ]
        if not found:
            return [ids[p] for p in parts]
        _, i = min(found)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


# ------------------------------------------------------------------ merge chains, every loader


def chain_files(loader: str, n: int, folder: Path) -> str:
    """Writes a vocabulary whose merges chain `a`, `aa`, `aaa`... to n merges, for `loader`;
    returns the Python expression that loads it."""
    if loader == "tokforge_json":
        doc = {
            "format": "tokforge",
            "version": 1,
            "name": "chain",
            "pretokenizer": {"type": "none"},
            "model": {
                "type": "merges",
                "merges": [[97, 97]] + [[256 + i, 97] for i in range(n - 1)],
            },
            "special_tokens": {},
            "byte_fallback": None,
            "metadata": {},
        }
        (folder / "chain.json").write_text(json.dumps(doc))
        return f"Tokenizer.load({str(folder / 'chain.json')!r})"
    if loader == "from_merges":
        merges = f"[(97, 97)] + [(256 + i, 97) for i in range({n - 1})]"
        return f"Tokenizer.from_merges({merges}, pretokenizer='none')"
    if loader == "tiktoken":
        lines = [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]
        lines += [f"{base64.b64encode(b'a' * (k + 2)).decode()} {256 + k}" for k in range(n)]
        (folder / "chain.tiktoken").write_text("\n".join(lines) + "\n")
        return f"Tokenizer.load({str(folder / 'chain.tiktoken')!r}, pretokenizer='none')"
    if loader == "hf":
        vocab = {"a" * (k + 1): k for k in range(n + 1)}
        merges = [["a" * (k + 1), "a"] for k in range(n)]
        doc = {"model": {"type": "BPE", "vocab": vocab, "merges": merges}}
        (folder / "tokenizer.json").write_text(json.dumps(doc))
        return f"Tokenizer.load({str(folder / 'tokenizer.json')!r})"
    if loader == "gpt2":
        table = gpt2_bytes_to_unicode()
        vocab = {table[b]: b for b in range(256)}
        vocab.update({"a" * (k + 2): 256 + k for k in range(n)})
        (folder / "vocab.json").write_text(json.dumps(vocab))
        merges = ["#version: 0.2"] + ["a" * (k + 1) + " a" for k in range(n)]
        (folder / "merges.txt").write_text("\n".join(merges) + "\n")
        return (
            f"Tokenizer.from_gpt2({str(folder / 'vocab.json')!r}, {str(folder / 'merges.txt')!r})"
        )
    raise AssertionError(loader)


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    prelude = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({CHILD_MEMORY}, {CHILD_MEMORY}))
        from tokforge import Tokenizer
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=CHILD_WAIT,
        env={**os.environ, "RAYON_NUM_THREADS": "2"},
    )


LOADERS = ["tokforge_json", "from_merges", "tiktoken", "hf", "gpt2"]


@pytest.mark.slow
@pytest.mark.parametrize("loader", LOADERS)
def test_a_long_merge_chain_is_refused_clearly_in_every_loader(loader: str, tmp_path: Path) -> None:
    # The file-based loaders hold every token's bytes, so their chains are shorter (6,000
    # merges: 18 MB of text, 7e10 for the sum of squared lengths, past the 2**33 limit); the
    # merge-list loaders derive tokens, so 100,000 merges fit in 1.3 MB.
    n = 6000 if loader in ("tiktoken", "hf", "gpt2") else 100_000
    load = chain_files(loader, n, tmp_path)
    r = run_child(
        f"""
        try:
            {load}
        except Exception as e:
            print(type(e).__name__, e)
        else:
            print("loaded")
        """
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "too long" in r.stdout, r.stdout


def test_from_merges_with_a_million_chained_merges_is_an_error() -> None:
    merges = [(97, 97)] + [(256 + i, 97) for i in range(10**6)]
    with pytest.raises(TokforgeError, match="too long"):
        Tokenizer.from_merges(merges, pretokenizer="none")


@pytest.mark.parametrize("loader", LOADERS)
def test_a_short_merge_chain_loads_and_encodes_by_the_rule(loader: str, tmp_path: Path) -> None:
    n = 1000
    tok = eval(chain_files(loader, n, tmp_path))  # an expression built by chain_files
    for text in ["a" * 301, "a" * 64, "a"]:
        ids = tok.encode_ordinary(text)
        assert tok.decode(ids) == text
        if loader == "hf":
            tokens = {"a" * (k + 1): k for k in range(n + 1)}
            merges = [("a" * (k + 1), "a") for k in range(n)]
            assert ids == merge_list_rule(tokens, merges, text)
        elif loader == "gpt2":
            tokens = {"a": 97} | {"a" * (k + 2): 256 + k for k in range(n)}
            merges = [("a" * (k + 1), "a") for k in range(n)]
            assert ids == merge_list_rule(tokens, merges, text)
        else:
            ranks = {bytes([b]): b for b in range(256)} | {
                b"a" * (k + 2): 256 + k for k in range(n)
            }
            assert ids == rank_rule(ranks, text.encode())


# ------------------------------------------------------------------ normalizers that grow text


def replace_chain(tmp_path: Path, steps: int, factor: int) -> Tokenizer:
    doc = {
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Replace", "pattern": {"String": "a"}, "content": "a" * factor}
            ]
            * steps,
        },
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},
    }
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc))
    return Tokenizer.load(path)


def test_a_normalizer_that_multiplies_text_is_an_error(tmp_path: Path) -> None:
    tok = replace_chain(tmp_path, 9, 10)
    with pytest.raises(TokforgeError, match="normalizers would grow the text"):
        tok.encode("ab")
    # Every entry point that normalizes.
    with pytest.raises(TokforgeError, match="normalizers would grow the text"):
        tok.encode_batch(["ab", "b"])
    with pytest.raises(TokforgeError, match="normalizers would grow the text"):
        tok.encode_ordinary("a" * 1000)


def test_growth_within_the_limit_is_encoded(tmp_path: Path) -> None:
    # 32 times the input plus 1 KiB: "ab" may grow to 1,088 bytes.
    tok = replace_chain(tmp_path, 3, 10)
    assert tok.encode("ab") == [0] * 1000 + [1]
    tok = replace_chain(tmp_path, 1, 33)
    assert tok.encode("a" * 100) == [0] * 3300
    assert tok.encode("a" * 1024) == [0] * 33 * 1024
    with pytest.raises(TokforgeError, match="past the limit of 36224"):
        tok.encode("a" * 1100)


# ------------------------------------------------------------------ added tokens and model ids


def hf_file(tmp_path: Path, added: list[dict[str, object]], vocab: dict[str, int]) -> Path:
    doc = {
        "added_tokens": added,
        "model": {"type": "BPE", "vocab": vocab, "merges": [], "unk_token": None},
    }
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc))
    return path


def test_an_added_token_on_another_tokens_id_is_refused(tmp_path: Path) -> None:
    path = hf_file(tmp_path, [{"id": 0, "content": "<s>", "special": True}], {"a": 0, "b": 1})
    with pytest.raises(
        VocabFileError, match=r'"<s>" has id 0, which the model\'s vocabulary gives to "a"'
    ):
        Tokenizer.load(path)
    # Two added tokens on one id.
    added = [
        {"id": 2, "content": "<s>", "special": True},
        {"id": 2, "content": "</s>", "special": True},
    ]
    with pytest.raises(VocabFileError, match=r'"</s>" has id 2, already the id of "<s>"'):
        Tokenizer.load(hf_file(tmp_path, added, {"a": 0, "b": 1}))


def test_an_added_token_repeating_its_model_token_is_accepted(tmp_path: Path) -> None:
    # tokenizers' trainer writes <unk> (and <0x00>...) both as added and as model tokens.
    added = [{"id": 2, "content": "<unk>", "special": True}]
    tok = Tokenizer.load(hf_file(tmp_path, added, {"a": 0, "b": 1, "<unk>": 2}))
    assert tok.encode("ab<unk>", allowed_special="all") == [0, 1, 2]
    assert tok.decode([0, 2]) == "a<unk>"


# ------------------------------------------------------------------ format detection


def test_a_tokenizer_json_with_its_model_after_many_added_tokens_is_detected(
    tmp_path: Path,
) -> None:
    added = [{"id": 3 + i, "content": f'<t{i} "model": {{>', "special": True} for i in range(3000)]
    doc = {
        "version": "1.0",
        "added_tokens": added,
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2}, "merges": []},
    }
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc))
    assert path.stat().st_size > 1 << 16
    assert tokforge.interop.formats.detect_format(path.read_bytes()) == "hf"
    tok = Tokenizer.load(path)
    assert tok.encode("abc") == [0, 1, 2]
    assert tok.encode('<t2999 "model": {>', allowed_special="all") == [3002]
    # Keys nested deeper than the top level do not count.
    nested = json.dumps({"a": [{"model": {}}], "b": {"format": "tokforge"}}).encode()
    assert tokforge.interop.formats.detect_format(nested) == "unknown_json"


# ------------------------------------------------------------------ decoding NumPy arrays


@pytest.fixture(scope="module")
def small_tok() -> Tokenizer:
    return Tokenizer.from_merges(
        [(104, 101), (256, 108), (257, 108), (258, 111)], pretokenizer="none"
    )


DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_decoding_an_array_equals_decoding_its_list(small_tok: Tokenizer, dtype: type) -> None:
    ids = small_tok.encode_ordinary("hello, hello world ") * 50
    want = small_tok.decode_bytes(ids)
    arr = np.array([i for i in ids if i <= np.iinfo(dtype).max], dtype=dtype)
    assert small_tok.decode_bytes(arr) == small_tok.decode_bytes(arr.tolist())
    if np.iinfo(dtype).max >= 259:
        assert small_tok.decode_bytes(arr) == want
        assert small_tok.decode(arr) == want.decode()
        # Strided and read-only views too.
        assert small_tok.decode_bytes(np.repeat(arr, 2)[::2]) == want
        arr.flags.writeable = False
        assert small_tok.decode_bytes(arr) == want
    assert small_tok.decode_bytes(np.array([], dtype=dtype)) == b""


@pytest.mark.parametrize(
    "bad",
    [
        np.array([104, -1], dtype=np.int64),
        np.array([104, -3], dtype=np.int8),
        np.array([104, 2**32], dtype=np.int64),
        np.array([104, 2**63], dtype=np.uint64),
        np.array([104, 2**32 - 1], dtype=np.uint32),
        np.array([104, 260], dtype=np.uint16),
    ],
)
def test_out_of_range_array_ids_are_the_list_error(small_tok: Tokenizer, bad: np.ndarray) -> None:
    with pytest.raises(UnknownTokenError) as from_array:
        small_tok.decode_bytes(bad)
    with pytest.raises(UnknownTokenError) as from_list:
        small_tok.decode_bytes(bad.tolist())
    assert str(from_array.value) == str(from_list.value)
    assert str(int(bad[1])) in str(from_array.value)


# ------------------------------------------------------------------ fork while threads encode


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_storm_children_encode(small_tok: Tokenizer) -> None:
    tok = small_tok
    # Many tiny documents: the batch's worker threads (which run without the GIL, so a fork can
    # land at any point of theirs) spend much of their time taking and returning caches.
    docs = ["hello hello"] * 5000
    want = tok.encode("hello hello")
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            tok.encode_batch(docs, num_threads=2)
            tok.encode(docs[0])

    threads = [threading.Thread(target=churn, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    pids = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for _ in range(100):
                pid = os.fork()
                if pid == 0:
                    ok = tok.encode("hello hello") == want and tok.encode_batch(
                        ["hello hello"], num_threads=1
                    ) == [want]
                    os._exit(0 if ok else 3)
                pids.append(pid)
    finally:
        stop.set()
        for t in threads:
            t.join()
    hung, failed = [], []
    deadline = time.monotonic() + 120  # only a hang reaches this
    for pid in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    failed.append(pid)
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                hung.append(pid)
                break
            time.sleep(0.01)
    assert not hung, f"{len(hung)} of {len(pids)} forked children hung encoding"
    assert not failed, f"{len(failed)} forked children encoded wrongly"
