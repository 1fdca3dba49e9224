"""Counts files: counting shards, adding the counts and training on the sum gives exactly the
merges of training on everything at once; the format refuses mixing and names bad bytes."""

from __future__ import annotations

import struct

import pytest
import tokforge
from conftest import CORPORA, corpus_text
from tokforge import _core
from tokforge.cli import main
from tokforge.errors import TokforgeError
from tokforge.training import train_merges
from tokforge.training.counts import MAGIC, count, info, load, merge, train_from_counts

SPECIAL = ["<|endoftext|>"]


def _slices(tmp_path, size=300_000):
    """A slice of every shared corpus, each as a file, with a special token in each."""
    files = []
    for name in CORPORA:
        text = corpus_text(name)[:size]
        text = text[: len(text) // 2] + "<|endoftext|>" + text[len(text) // 2 :]
        p = tmp_path / f"{name}.txt"
        p.write_text(text, encoding="utf-8")
        files.append(p)
    return files


@pytest.mark.parametrize("preset", ["cl100k", "o200k"])
def test_sharded_counts_train_like_the_whole(tmp_path, preset):
    files = _slices(tmp_path)
    whole = train_merges(files, 1500, pretokenizer=preset, special_tokens=SPECIAL, progress=False)
    assert len(whole.merges) == 1500
    shardings = [
        [files],  # one shard
        [[f] for f in files],  # a file each
        [files[:1], files[1:4], files[4:]],  # uneven
        [files[::2], files[1::2]],  # interleaved
    ]
    for k, shards in enumerate(shardings):
        parts = []
        for i, group in enumerate(shards):
            out = tmp_path / f"s{k}-{i}.counts"
            count(group, out, pretokenizer=preset, special_tokens=SPECIAL, num_threads=1 + i % 2)
            parts.append(out)
        # A tree: pairs first, then everything (merging merged files is merging too).
        if len(parts) > 2:
            mid = tmp_path / f"s{k}-mid.counts"
            merge(parts[:2], mid)
            parts = [mid, *parts[2:]]
        total = tmp_path / f"s{k}.counts"
        merge(parts, total)
        tok = train_from_counts(total, 256 + 1500 + 1, progress=False)
        assert tok.merges == whole.merges, f"sharding {k}"
        assert tok.special_tokens == {"<|endoftext|>": 1756}
        h = info(total)
        assert h["stats"]["bytes"] == whole.stats["bytes"]
        assert h["distinct"] == whole.stats["distinct_pretokens"]
        assert h["stats"]["pretokens"] == whole.stats["pretokens"]


def test_counts_equal_the_counter(tmp_path):
    files = _slices(tmp_path, 50_000)
    c = count(files, tmp_path / "a.counts")
    back = load(tmp_path / "a.counts")
    assert back.counts() == c.counts()
    assert (back.num_bytes, back.num_pretokens, back.num_documents) == (
        c.num_bytes,
        c.num_pretokens,
        c.num_documents,
    )
    assert back.preset == "cl100k" and back.pattern == c.pattern
    # Bytes round trip (what the distributed path ships between workers).
    again = _core.PretokenCounter.from_counts_bytes([c.to_counts_bytes(), c.to_counts_bytes()])
    assert dict(again.counts()) == {k: 2 * v for k, v in c.counts()}
    # Compact: well under the text it describes.
    assert (tmp_path / "a.counts").stat().st_size < c.num_bytes / 3


def test_mixing_pretokenizers_or_specials_is_refused(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hello world <|endoftext|> again\n")
    count([f], tmp_path / "cl.counts")
    count([f], tmp_path / "o2.counts", pretokenizer="o200k")
    count([f], tmp_path / "sp.counts", special_tokens=SPECIAL)
    count([f], tmp_path / "re.counts", pattern=r"\w+|\s+|.")
    with pytest.raises(TokforgeError, match=r"different pretokenizers.*cl100k.*o200k"):
        load([tmp_path / "cl.counts", tmp_path / "o2.counts"])
    with pytest.raises(TokforgeError, match="different special tokens"):
        load([tmp_path / "cl.counts", tmp_path / "sp.counts"])
    with pytest.raises(TokforgeError, match="different pretokenizers"):
        load([tmp_path / "re.counts", tmp_path / "cl.counts"])
    # A preset given by its own regex is that preset.
    count([f], tmp_path / "cl2.counts", pattern=_core.preset_pattern("cl100k"))
    load([tmp_path / "cl.counts", tmp_path / "cl2.counts"])
    # Training with other special tokens than counted is refused too.
    with pytest.raises(TokforgeError, match="special tokens"):
        train_from_counts(tmp_path / "cl.counts", 300, special_tokens=SPECIAL, progress=False)
    assert main(["merge-counts", str(tmp_path / "cl.counts"), str(tmp_path / "o2.counts"),
                 "-o", str(tmp_path / "x.counts")]) == 1  # fmt: skip
    assert not (tmp_path / "x.counts").exists()


def test_bad_files_name_file_and_byte(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("some text for counting, with words and words\n" * 20)
    good = tmp_path / "a.counts"
    count([f], good)
    data = good.read_bytes()
    assert data[:8] == MAGIC
    (version,) = struct.unpack("<I", data[8:12])
    assert version == 1
    cases = {
        "trunc.counts": (data[: len(data) - 20], "at byte"),
        "magic.counts": (b"XXXXXXXX" + data[8:], "at byte 0"),
        "newer.counts": (data[:8] + struct.pack("<I", 2) + data[12:], "at byte 8: version 2"),
        "flip.counts": (data[:-6] + bytes([data[-6] ^ 1]) + data[-5:], "at byte"),
    }
    for name, (blob, expected) in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(tokforge.errors.TokforgeIOError) as e:
            load(p)
        assert name in str(e.value) and expected in str(e.value), str(e.value)


def test_pruning_is_recorded_and_approximate(tmp_path):
    files = _slices(tmp_path, 100_000)
    exact = count(files, tmp_path / "exact.counts")
    count(files, tmp_path / "pruned.counts", min_pretoken_count=3)
    h = info(tmp_path / "pruned.counts")
    assert h["min_pretoken_count"] == 3 and h["pruned"]["distinct"] > 0
    pruned = load(tmp_path / "pruned.counts")
    assert pruned.num_distinct == exact.num_distinct - h["pruned"]["distinct"]
    assert pruned.pruning == (3, h["pruned"]["distinct"], h["pruned"]["total"])
    tok = train_from_counts(tmp_path / "pruned.counts", 600, progress=False)
    assert tok.metadata["training"]["min_pretoken_count"] == 3
    # Merging keeps the threshold.
    merge([tmp_path / "pruned.counts", tmp_path / "exact.counts"], tmp_path / "m.counts")
    assert info(tmp_path / "m.counts")["min_pretoken_count"] == 3


def test_cli_count_merge_train(tmp_path, capsys):
    files = _slices(tmp_path, 100_000)
    a, b, total = tmp_path / "a.counts", tmp_path / "b.counts", tmp_path / "all.counts"
    sp = ["--special", "<|endoftext|>"]
    assert main(["count", *map(str, files[:3]), "-o", str(a), "-q", *sp]) == 0
    assert main(["count", *map(str, files[3:]), "-o", str(b), *sp, "--threads", "1"]) == 0
    assert "distinct pretokens" in capsys.readouterr().err
    assert main(["merge-counts", str(a), str(b), "-o", str(total), "-q"]) == 0
    out = tmp_path / "fc.json"
    assert main(["train", "--from-counts", str(total), "-v", "700", "-o", str(out), "-q"]) == 0
    whole = tmp_path / "whole.json"
    assert main(["train", *map(str, files), "-v", "700", "-o", str(whole), "-q", *sp]) == 0
    t1, t2 = tokforge.Tokenizer.load(out), tokforge.Tokenizer.load(whole)
    assert t1.merges == t2.merges and t1.special_tokens == t2.special_tokens
    # --from-counts twice adds them up, like merge-counts.
    out2 = tmp_path / "fc2.json"
    args = ["train", "--from-counts", str(a), "--from-counts", str(b), "-v", "700", "-o"]
    assert main([*args, str(out2), "-q"]) == 0
    assert tokforge.Tokenizer.load(out2).merges == t2.merges
    # Disagreeing options are refused, and nothing is written.
    bad = tmp_path / "bad.json"
    for extra in (["-p", "o200k"], ["--special", "<|x|>"], [str(files[0])]):
        assert (
            main(["train", "--from-counts", str(total), "-v", "700", "-o", str(bad), *extra]) == 1
        )
    assert "differs" in capsys.readouterr().err
    assert not bad.exists()
    assert main(["train", "-v", "700", "-o", str(bad)]) == 1
    assert main(["count", str(tmp_path / "missing.txt"), "-o", str(a)]) == 1
