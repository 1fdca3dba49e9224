"""tokforge.training.distributed on local processes and on a real Dask LocalCluster (two worker
processes): counting and training equal local training, dataset shards equal ``encode`` file by
file, a rerun skips finished shards, a worker killed mid-run loses nothing. Also: tokenizers
pickle small, survive fork, and work in ``datasets.Dataset.map(num_proc=2)``."""

from __future__ import annotations

import json
import os
import pickle
import re
import threading
import time

import numpy as np
import pytest
import tokforge
from conftest import CORPORA, corpus_text
from tokforge.cli import main
from tokforge.errors import TokforgeError
from tokforge.training import counts as tc
from tokforge.training import distributed as td

SPECIAL = "<|endoftext|>"


def _files(tmp_path, size=60_000, n=None):
    files = []
    for i, name in enumerate(CORPORA if n is None else (CORPORA * 10)[:n]):
        text = corpus_text(name)[i * 1000 : i * 1000 + size]
        p = tmp_path / "in" / f"{i:02d}-{name}.txt"
        p.parent.mkdir(exist_ok=True)
        p.write_text(text + SPECIAL + "tail\n", encoding="utf-8")
        files.append(p)
    return files


def _tok(tmp_path):
    return tokforge.train(
        [p.read_text() for p in _files(tmp_path, 30_000)],
        600,
        special_tokens=[SPECIAL],
        progress=False,
    )


def _expected(files, tok):
    """encode, file by file, with the EOT after each."""
    eot = tok.special_tokens[SPECIAL]
    return [[*tok.encode(f.read_text(encoding="utf-8"), disallowed_special=()), eot] for f in files]


def _check_shards(out, files, tok):
    manifest = json.loads((out / td.MANIFEST).read_text())
    assert [s["source"] for s in manifest["shards"]] == [str(f.resolve()) for f in files]
    assert manifest["dtype"] == "uint16"
    for s, want in zip(manifest["shards"], _expected(files, tok), strict=True):
        ids = np.load(out / s["shard"])
        assert ids.dtype == np.uint16
        assert ids.tolist() == want
        assert s["tokens"] == len(want) and s["documents"] == 1
    return manifest


def _snapshot(out):
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.npy"))} | {
        "manifest": json.loads((out / td.MANIFEST).read_text())["shards"]
    }


# ------------------------------------------------------------------------------------------
# Local processes
# ------------------------------------------------------------------------------------------


def test_local_count_train_and_encode(tmp_path):
    files = _files(tmp_path)
    want = tokforge.train(files, 900, special_tokens=[SPECIAL], progress=False)
    got = td.train(files, 900, special_tokens=[SPECIAL], num_workers=2, files_per_task=2)
    assert got.merges == want.merges and got.special_tokens == want.special_tokens

    tok = _tok(tmp_path)
    out = tmp_path / "shards"
    manifest = td.encode_files(files, tok, out, eot=SPECIAL, num_workers=2)
    _check_shards(out, files, tok)
    assert manifest["totals"]["text_bytes"] == sum(f.stat().st_size for f in files)
    # A rerun skips every shard (the files are not rewritten) and gives the same manifest.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    assert td.encode_files(files, tok, out, eot=SPECIAL, num_workers=2) == manifest
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")} == stamps
    # A damaged shard fails its checksum and is redone; so is one with no record.
    victim = out / manifest["shards"][0]["shard"]
    victim.write_bytes(victim.read_bytes()[:-4] + b"\0\0\0\0")
    (out / manifest["shards"][1]["shard"]).with_suffix(".json").unlink()
    assert td.encode_files(files, tok, out, eot=SPECIAL, num_workers=2) == manifest
    _check_shards(out, files, tok)
    # Another tokenizer's rerun does not reuse the shards.
    other = tokforge.train(
        [f.read_text() for f in files], 700, special_tokens=[SPECIAL], progress=False
    )
    m2 = td.encode_files(files, other, out, eot=SPECIAL, num_workers=2)
    assert m2["totals"]["tokens"] != manifest["totals"]["tokens"]


def test_chunks_cover_the_file_at_line_ends(tmp_path):
    f = tmp_path / "big.txt"
    text = corpus_text("code_py")[:200_000]
    f.write_text(text, encoding="utf-8")
    tok = _tok(tmp_path)
    out = tmp_path / "chunks"
    manifest = td.encode_files([f], tok, out, chunk_bytes=30_000, num_workers=2)
    assert len(manifest["shards"]) == 7
    pieces = []
    for s in manifest["shards"]:
        raw = f.read_bytes()[s["byte_offset"] : s["byte_offset"] + s["text_bytes"]]
        piece = tok.decode(np.load(out / s["shard"]).tolist())
        assert raw.decode() == piece
        assert piece.endswith("\n") or s is manifest["shards"][-1]
        assert np.load(out / s["shard"]).tolist() == tok.encode(piece, disallowed_special=())
        pieces.append(piece)
    assert "".join(pieces) == text


def test_cli_encode_dataset(tmp_path, capsys):
    files = _files(tmp_path, 20_000)[:3]
    tok = _tok(tmp_path)
    tok.save(tmp_path / "tok.json")
    out = tmp_path / "cli"
    args = ["encode-dataset", *map(str, files), "-t", str(tmp_path / "tok.json"), "-o", str(out)]
    assert main([*args, "--eot", SPECIAL, "--workers", "2"]) == 0
    assert "3 shard(s) (uint16)" in capsys.readouterr().err
    _check_shards(out, files, tok)
    assert main([*args, "--eot", "<|nope|>"]) == 1
    assert "not a special token" in capsys.readouterr().err


def test_jsonl_records_are_documents(tmp_path):
    import gzip

    docs = [{"text": "first doc\n"}, {"id": 2}, {"text": "second <|endoftext|> doc"}]
    p = tmp_path / "d.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    tok = _tok(tmp_path)
    eot = tok.special_tokens[SPECIAL]
    # a record without the field is an error naming its line, as in train
    with pytest.raises(TokforgeError, match=r"d\.jsonl\.gz: line 2: no field 'text'"):
        td.encode_files([p], tok, tmp_path / "j", eot=SPECIAL, num_workers=1)
    del docs[1]
    with gzip.open(p, "wt", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    m = td.encode_files([p], tok, tmp_path / "j", eot=SPECIAL, num_workers=1)
    ids = np.load(tmp_path / "j" / m["shards"][0]["shard"]).tolist()
    want = []
    for d in ("first doc\n", "second <|endoftext|> doc"):
        want += [*tok.encode(d, disallowed_special=()), eot]
    assert ids == want and m["shards"][0]["documents"] == 2


# ------------------------------------------------------------------------------------------
# Pickling, fork, datasets
# ------------------------------------------------------------------------------------------


def test_pickle_is_the_file_bytes(tmp_path):
    tok = _tok(tmp_path)
    blob = pickle.dumps(tok)
    assert len(blob) < len(tok.to_json_bytes()) + 300
    back = pickle.loads(blob)
    assert back.encode("héllo wörld") == tok.encode("héllo wörld")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_encodes_after_parent_batch(tmp_path):
    tok = _tok(tmp_path)
    texts = [corpus_text(n)[:20_000] for n in CORPORA]
    want = tok.encode_batch(texts, num_threads=2)  # threads ran (and ended) in the parent
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: encode, report, exit without running pytest's teardown
        try:
            ok = (
                tok.encode_batch(texts, num_threads=2) == want
                and [tok.encode(t) for t in texts] == want
            )
            os.write(w, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 16) == b"ok" and status == 0


def test_datasets_map_num_proc(tmp_path):
    datasets = pytest.importorskip("datasets", reason="datasets is not installed")
    tok = _tok(tmp_path)
    texts = [corpus_text(n)[i * 500 : i * 500 + 400] for n in CORPORA for i in range(10)]
    tok.encode_batch(texts[:4])  # the parent has used its threads before the workers fork
    ds = datasets.Dataset.from_dict({"text": texts})

    def enc(batch):
        return {"ids": tok.encode_batch(batch["text"], disallowed_special=())}

    out = ds.map(enc, batched=True, batch_size=8, num_proc=2, keep_in_memory=True)
    assert out["ids"] == [tok.encode(t, disallowed_special=()) for t in texts]


# ------------------------------------------------------------------------------------------
# A real Dask cluster: two worker processes
# ------------------------------------------------------------------------------------------


def slow_split(text: str) -> list[str]:
    """A callable pretokenizer that takes its time, so a worker can be killed mid-run."""
    time.sleep(0.15)
    return re.findall(r"\s+|\w+|[^\w\s]+", text)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=50,
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.slow
def test_dask_count_and_train_equal_local(tmp_path, client):
    files = _files(tmp_path, 40_000, n=9)
    want = tokforge.train(
        files, 800, special_tokens=[SPECIAL], pretokenizer="o200k", progress=False
    )
    local = tc.load(tc.count(files, special_tokens=[SPECIAL], pretokenizer="o200k"))
    # fan_in=2: 9 tasks merge in a tree of depth 4.
    counter = td.count(files, client, special_tokens=[SPECIAL], pretokenizer="o200k", fan_in=2)
    assert counter.counts() == local.counts()
    got = td.train(files, 800, client, special_tokens=[SPECIAL], pretokenizer="o200k", fan_in=3)
    assert got.merges == want.merges and got.special_tokens == want.special_tokens


@pytest.mark.slow
def test_dask_encode_equals_encode_and_survives_a_killed_worker(tmp_path, client):
    files = _files(tmp_path, 8_000, n=24)
    base = _tok(tmp_path)
    # The same merges with a slow pretokenizer: each shard takes >= 0.15 s, so there is time
    # to kill a worker while shards are being written.
    tok = tokforge.Tokenizer.from_merges(
        base.merges, pretokenizer=slow_split, special_tokens=base.special_tokens
    )
    reference = tmp_path / "reference"
    td.encode_files(files, tok, reference, client, eot=SPECIAL)
    _check_shards(reference, files, tok)

    out = tmp_path / "killed"
    pids = list(client.run(os.getpid).values())
    result: dict[str, object] = {}

    def run():
        try:
            result["manifest"] = td.encode_files(files, tok, out, client, eot=SPECIAL)
        except BaseException as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 30
    while len(list(out.glob("*.npy"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    done_at_kill = len(list(out.glob("*.npy")))
    os.kill(pids[0], 9)
    t.join(120)
    assert not t.is_alive() and "error" not in result, result.get("error")
    assert 0 < done_at_kill < len(files), "the worker was killed mid-run"
    assert _snapshot(out) == _snapshot(reference)
    # And a rerun of the finished output skips everything.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    td.encode_files(files, tok, out, client, eot=SPECIAL)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")} == stamps
