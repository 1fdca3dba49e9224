"""BPE training: the Rust trainer against the pure-Python reference (shared corpora, hypothesis
corpora, 1/2/4 threads), the textbook walkthrough, round trips, tiktoken export, file inputs,
errors, the CLI, progress and logging.

Expected values come from the textbook walkthrough or from tokforge.reference, never from the
code under test."""

from __future__ import annotations

import gzip
import json
import logging
import random

import pytest
from conftest import CORPORA, corpus_text, require_module, require_shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokforge import _core
from tokforge import reference as ref
from tokforge.cli import main
from tokforge.errors import TokforgeError
from tokforge.training import TrainResult, train, train_merges

TEXTBOOK = "low lower lowest lowly"


def rust_merges(texts, num_merges, threads=1, preset="cl100k", **kw):
    """(merges, counts) from the Rust trainer, without the Python conveniences."""
    c = _core.PretokenCounter(preset=preset, num_threads=threads)
    c.add_texts(texts)
    merges, counts, _ = c.train(num_merges, **kw)
    return list(zip(merges, counts, strict=True))


def ref_merges(texts, num_merges, preset="cl100k", **kw):
    return ref.train_merges(ref.count_pretokens(texts, preset), num_merges, **kw)


def slice_of(name: str, size: int, start: int = 0) -> str:
    """`size` bytes of a shared corpus from `start`, cut at character boundaries."""
    data = corpus_text(name).encode("utf-8")[start : start + size]
    return data.decode("utf-8", "ignore")


# --------------------------------------------------------------------------- the textbook case


def test_textbook_trace_and_splits(capsys):
    tok = train([TEXTBOOK], 300, pretokenizer="whitespace", trace=5, progress=False)
    out = capsys.readouterr().out.splitlines()
    # Training stops after "lowe": every remaining pair occurs once (min_frequency=2).
    assert out == [
        "merge 1: (l, o) -> 'lo'  count 4",
        "merge 2: (lo, w) -> 'low'  count 4",
        "merge 3: (low, e) -> 'lowe'  count 2",
    ]
    pieces = [
        [tok.decode_single_token_bytes(t) for t in tok.encode(w)] for w in ("lowest", "lowly")
    ]
    assert pieces == [[b"lowe", b"s", b"t"], [b"low", b"l", b"y"]]
    assert tok.n_vocab == 259
    assert tok.merges == [(108, 111), (256, 119), (257, 101)]


def test_textbook_cli(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXTBOOK)
    out = tmp_path / "tok.json"
    rc = main(["train", str(corpus), "--pattern", "whitespace", "--vocab-size", "300",
               "-o", str(out), "--trace", "3"])  # fmt: skip
    assert rc == 0
    assert capsys.readouterr().out.splitlines() == [
        "merge 1: (l, o) -> 'lo'  count 4",
        "merge 2: (lo, w) -> 'low'  count 4",
        "merge 3: (low, e) -> 'lowe'  count 2",
    ]
    from tokforge import Tokenizer

    tok = Tokenizer.load(out)
    assert [tok.decode_single_token_bytes(t) for t in tok.encode("lowly")] == [b"low", b"l", b"y"]


# ------------------------------------------------------------------ Rust == reference (oracle)


@pytest.mark.parametrize("name", CORPORA)
def test_matches_reference_on_shared_corpora(name):
    text = slice_of(name, 24_000, start=100_000)
    docs = [text[i : i + 2000] for i in range(0, len(text), 2000)]
    expected = ref_merges(docs, 160)
    assert len(expected) == 160
    for threads in (1, 2, 4):
        assert rust_merges(docs, 160, threads=threads) == expected, f"{name}, {threads} threads"


@pytest.mark.parametrize("preset", ["o200k", "gpt2", "whitespace", "none"])
def test_matches_reference_with_other_pretokenizers(preset):
    text = slice_of("en_docs", 12_000) + slice_of("man_ru", 6_000)
    docs = [text[i : i + 500] for i in range(0, len(text), 500)]
    expected = ref_merges(docs, 80, preset=preset, min_frequency=1)
    assert rust_merges(docs, 80, threads=2, preset=preset, min_frequency=1) == expected


def test_matches_reference_with_max_token_bytes_and_min_frequency():
    docs = [slice_of("code_py", 15_000)]
    kw = {"min_frequency": 5, "max_token_bytes": 3}
    expected = ref_merges(docs, 300, **kw)
    assert len(expected) < 300  # the cap or the frequency ends it early
    assert rust_merges(docs, 300, threads=4, **kw) == expected


# Small alphabets: many ties, long runs of one byte (overlapping pairs), multi-byte characters.
corpus_strategy = st.lists(
    st.text(alphabet=st.sampled_from(list("aab b\n\tcé日")), max_size=30), min_size=1, max_size=12
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=corpus_strategy,
    num_merges=st.integers(0, 30),
    min_frequency=st.integers(1, 3),
    max_token_bytes=st.one_of(st.none(), st.integers(2, 5)),
    preset=st.sampled_from(["cl100k", "whitespace", "none"]),
)
def test_matches_reference_on_generated_corpora(
    texts, num_merges, min_frequency, max_token_bytes, preset
):
    kw = {"min_frequency": min_frequency, "max_token_bytes": max_token_bytes}
    expected = ref_merges(texts, num_merges, preset=preset, **kw)
    for threads in (1, 2, 4):
        assert rust_merges(texts, num_merges, threads=threads, preset=preset, **kw) == expected


@pytest.mark.parametrize("name", ["en_docs", "man_ja"])
def test_matches_rustbpe_when_installed(name):
    # An independent implementation with the same rule (highest count, ties to the smallest
    # pair). rustbpe has no min_frequency, so compare with min_frequency=1.
    rustbpe = require_module("rustbpe")
    text = slice_of(name, 200_000)
    docs = [text[i : i + 4000] for i in range(0, len(text), 4000)]
    peer = rustbpe.Tokenizer()
    peer.train_from_iterator(iter(docs), 256 + 400, pattern=_core.preset_pattern("cl100k"))
    theirs = sorted(peer.get_mergeable_ranks(), key=lambda t: t[1])
    tok = train(docs, 256 + 400, min_frequency=1, progress=False)
    ours = [(tok.decode_single_token_bytes(i), i) for i in range(tok.n_vocab)]
    assert ours == [(bytes(b), r) for b, r in theirs]


def test_counts_match_reference():
    text = slice_of("man_de", 40_000)
    docs = [text[i : i + 1000] for i in range(0, len(text), 1000)]
    c = _core.PretokenCounter(preset="cl100k", num_threads=2, special_tokens=["\\fB"])
    c.add_texts(docs)
    expected = ref.count_pretokens(docs, "cl100k", ["\\fB"])
    assert dict(c.counts()) == dict(expected)
    assert c.num_pretokens == sum(expected.values())


# ----------------------------------------------------------------------------- determinism


def test_order_and_threads_do_not_matter(tmp_path):
    docs = [slice_of(n, 8_000) for n in CORPORA]
    base = train_merges(docs, 200, num_threads=1, progress=False).merges
    shuffled = docs[::-1]
    random.Random(7).shuffle(shuffled)
    assert train_merges(shuffled, 200, num_threads=3, progress=False).merges == base
    files = []
    for i, d in enumerate(docs):
        f = tmp_path / f"{i}.txt"
        f.write_text(d, encoding="utf-8")
        files.append(f)
    assert train_merges(files, 200, num_threads=2, progress=False).merges == base
    assert train_merges(files[::-1], 200, num_threads=4, progress=False).merges == base


def test_generator_is_consumed_in_batches():
    docs = [slice_of("en_docs", 3_000, start=i * 3_000) for i in range(20)]
    c = _core.PretokenCounter(num_threads=2)
    c.add_texts((d for d in docs), batch_bytes=5_000)  # many small batches
    whole = _core.PretokenCounter(num_threads=2)
    whole.add_texts(docs)
    assert c.counts() == whole.counts()
    assert c.num_documents == 20


# ----------------------------------------------------------------- tokenizers and round trips


def test_several_sizes_are_prefixes():
    docs = [slice_of("en_docs", 30_000)]
    small, large = train(docs, [300, 400], special_tokens=["<|endoftext|>"], progress=False)
    assert small.n_vocab == 300 and large.n_vocab == 400
    assert large.merges[: len(small.merges)] == small.merges
    assert small.special_tokens == {"<|endoftext|>": 299}
    assert large.special_tokens == {"<|endoftext|>": 399}
    assert small.encode("<|endoftext|>", allowed_special="all") == [299]


def test_fixed_special_ids():
    tok = train(["abab abab"], 260, special_tokens={"<|eot|>": 1000}, progress=False)
    assert tok.special_tokens == {"<|eot|>": 1000}
    with pytest.raises(TokforgeError, match="ordinary token"):
        train(["abab abab"], 300, special_tokens={"<|eot|>": 257}, min_frequency=1,
              progress=False)  # fmt: skip


def test_special_text_takes_no_part():
    tok = train(["ab<|x|>ab<|x|>ab"], 300, special_tokens=["<|x|>"], progress=False)
    # Only "ab" repeats (3 times); "|x" never counts.
    assert tok.merges == [(97, 98)]


@pytest.mark.parametrize("name", CORPORA)
def test_decode_encode_round_trip(name):
    text = slice_of(name, 60_000)
    tok = train([text], 1000, progress=False)
    sample = slice_of(name, 20_000, start=200_000)
    assert tok.decode(tok.encode(sample)) == sample


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_round_trip_on_arbitrary_text(text):
    tok = _round_trip_tokenizer()
    assert tok.decode(tok.encode(text, disallowed_special=())) == text


_TOK = []


def _round_trip_tokenizer():
    if not _TOK:
        _TOK.append(train([slice_of("en_docs", 40_000)], 700, progress=False))
    return _TOK[0]


@pytest.mark.parametrize("name", ["en_docs", "man_zh_CN", "code_py"])
def test_tiktoken_export_gives_identical_ids(name, tmp_path):
    require_module("tiktoken")
    import tiktoken
    import tiktoken.load

    tok = train([slice_of(name, 80_000)], 1500, special_tokens=["<|endoftext|>"], progress=False)
    path = tmp_path / "t.tiktoken"
    tok.to_tiktoken(path)
    enc = tiktoken.Encoding(
        "trained",
        pat_str=_core.preset_pattern("cl100k"),
        mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(path)),
        special_tokens=tok.special_tokens,
    )
    sample = slice_of(name, 30_000, start=300_000) + "<|endoftext|>"
    assert enc.encode(sample, allowed_special="all") == tok.encode(sample, allowed_special="all")
    assert enc.n_vocab == tok.n_vocab


def test_cli_tiktoken_format_loads_in_tiktoken(tmp_path):
    require_module("tiktoken")
    import tiktoken
    import tiktoken.load

    corpus = tmp_path / "c.txt"
    corpus.write_text(slice_of("en_docs", 50_000), encoding="utf-8")
    out = tmp_path / "v.tiktoken"
    assert main(["train", str(corpus), "-v", "600", "-o", str(out), "--format", "tiktoken",
                 "-q"]) == 0  # fmt: skip
    ranks = tiktoken.load.load_tiktoken_bpe(str(out))
    assert len(ranks) == 600 and sorted(ranks.values()) == list(range(600))


# --------------------------------------------------------------------------------- files


def test_plain_jsonl_and_gzip_files_agree(tmp_path):
    docs = [slice_of("en_docs", 5_000, start=i * 5_000) for i in range(6)]
    expected = train_merges(docs, 150, progress=False).merges
    (tmp_path / "a.jsonl").write_text(
        "".join(json.dumps({"id": i, "body": d}) + "\n" for i, d in enumerate(docs))
    )
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"body": d}) + "\n" for d in docs)
    for name in ("a.jsonl", "b.jsonl.gz"):
        got = train_merges(tmp_path / name, 150, text_field="body", progress=False).merges
        assert got == expected, name
    # Plain text: one file per document (a file is one text, cut only where pieces split).
    plain = []
    for i, d in enumerate(docs):
        p = tmp_path / f"{i}.txt.gz" if i % 2 else tmp_path / f"{i}.txt"
        if i % 2:
            p.write_bytes(gzip.compress(d.encode("utf-8")))
        else:
            p.write_text(d, encoding="utf-8")
        plain.append(p)
    assert train_merges(plain, 150, progress=False).merges == expected


def test_large_file_equals_text(tmp_path):
    require_shared("corpora")
    text = corpus_text("man_ja")  # 4 MB: read in blocks, counted on several threads
    path = tmp_path / "ja.txt"
    path.write_text(text, encoding="utf-8")
    from_file = _core.PretokenCounter(num_threads=2)
    from_file.add_files([str(path)])
    counts = ref.count_pretokens([text[: len(text) // 3]], "cl100k")
    sub = _core.PretokenCounter(num_threads=1)
    sub.add_texts([text[: len(text) // 3]])
    assert dict(sub.counts()) == dict(counts)
    whole = _core.PretokenCounter(num_threads=1)
    whole.add_texts([text])
    assert from_file.counts() == whole.counts()


# -------------------------------------------------------------------------------- errors


def test_invalid_utf8_strict_names_file_byte_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"first line\nsecond \xff line\n")
    with pytest.raises(TokforgeError) as e:
        train(bad, 300, progress=False)
    msg = str(e.value)
    assert "byte 18" in msg and "bad.txt (line 2)" in msg
    tok = train(bad, 300, errors="replace", progress=False, min_frequency=1)
    assert "\ufffd" in tok.decode(tok.encode("\ufffd"))


def test_lone_surrogate_in_text():
    with pytest.raises(TokforgeError, match="lone surrogate"):
        train(["ok", "bad \ud800 text"], 300, progress=False)
    tok = train(["ab \ud800 ab"], 300, errors="replace", progress=False)
    assert tok.merges == [(97, 98)]


def test_empty_corpus(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(TokforgeError, match="empty"):
        train(empty, 300, progress=False)
    with pytest.raises(TokforgeError, match="empty"):
        train([], 300, progress=False)
    with pytest.raises(TokforgeError, match="empty"):
        train(["", ""], 300, progress=False)


def test_vocab_size_too_small():
    with pytest.raises(TokforgeError, match="at least 258"):
        train(["abc"], 257, special_tokens=["<a>", "<b>"], progress=False)
    with pytest.raises(TokforgeError, match="at least 256"):
        train(["abc"], [300, 200], progress=False)


def test_unreadable_inputs(tmp_path):
    with pytest.raises(OSError, match=r"missing\.txt"):
        train(tmp_path / "missing.txt", 300, progress=False)
    with pytest.raises(OSError, match="directory"):
        train(tmp_path, 300, progress=False)
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"text": "a"}\n{"txt": "b"}\n')
    with pytest.raises(OSError, match='line 2: no field "text"'):
        train(bad, 300, progress=False)
    bad.write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(OSError, match="line 2: not a JSON object"):
        train(bad, 300, progress=False)
    with pytest.raises(TypeError, match="must be str"):
        train(["a", 3], 300, progress=False)


def test_bad_options():
    with pytest.raises(TokforgeError, match="unknown pretokenizer"):
        train(["a"], 300, pretokenizer="cl200k", progress=False)
    with pytest.raises(TokforgeError):
        train(["a"], 300, pattern="(unclosed", progress=False)
    with pytest.raises(TokforgeError, match="errors"):
        train(["a"], 300, errors="ignore", progress=False)
    with pytest.raises(TypeError):
        train(["a"], 300, pattern=r"\w+", pretokenizer="gpt2", progress=False)


def test_cli_errors_leave_no_output(tmp_path, capsys):
    out = tmp_path / "tok.json"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xfe\n")
    for argv in (
        [str(bad)],
        [str(tmp_path / "missing.txt")],
        [str(bad), "--vocab-size", "10"],
    ):
        full = ["train", *argv, "-o", str(out), "-q"]
        if "--vocab-size" not in argv:
            full += ["--vocab-size", "300"]
        assert main(full) == 1
        err = capsys.readouterr().err
        assert err.startswith("tokforge train: error:") and err.count("\n") == 1, err
        assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_cli_several_sizes_and_quiet(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(slice_of("code_py", 30_000), encoding="utf-8")
    rc = main(["train", str(corpus), "-v", "400,300", "-o", str(tmp_path / "t.json"), "-q",
               "--special", "<|endoftext|>"])  # fmt: skip
    assert rc == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    from tokforge import Tokenizer

    a, b = Tokenizer.load(tmp_path / "t-300.json"), Tokenizer.load(tmp_path / "t-400.json")
    assert (a.n_vocab, b.n_vocab) == (300, 400)
    assert (len(a.merges), len(b.merges)) == (43, 143)
    assert b.merges[:43] == a.merges
    assert b.metadata["training"]["vocab_size"] == 400


# ---------------------------------------------------------------------- progress and logging


def test_progress_callback_and_silence(capsys):
    seen = []
    train([slice_of("en_docs", 20_000)], 400, progress=lambda *a: seen.append(a))
    phases = [p for p, _, _ in seen]
    assert "count" in phases and "merge" in phases
    assert seen[-1] == ("merge", 144, 144)
    train([slice_of("en_docs", 20_000)], 400, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_bar_writes_to_stderr(capsys):
    train([slice_of("en_docs", 20_000)], 400)
    err = capsys.readouterr().err
    assert "counting" in err and "merging" in err and "144/144 merges" in err


def test_logs_go_through_python_logging(caplog):
    with caplog.at_level(logging.INFO, logger="tokforge.train"):
        train([TEXTBOOK], 300, pretokenizer="whitespace", progress=False)
    messages = [r.getMessage() for r in caplog.records if r.name == "tokforge.train"]
    assert any(m.startswith("learned 3 merges") for m in messages)  # from Rust
    assert any("fewer than min_frequency=2" in m for m in messages)


def test_interrupt_from_progress_callback_stops_training():
    def stop(phase, done, total):
        if phase == "merge" and done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train([slice_of("en_docs", 100_000)], 5000, progress=stop)


def test_result_object():
    r = train_merges([TEXTBOOK], 10, pretokenizer="whitespace", progress=False)
    assert isinstance(r, TrainResult)
    assert (r.stop_reason, r.counts, r.pretokenizer) == ("min_frequency", [4, 4, 2], "whitespace")
    assert r.stats["distinct_pretokens"] == 5 and r.stats["pretokens"] == 7
    assert r.trace(1) == ["merge 1: (l, o) -> 'lo'  count 4"]
    assert r.tokenizer().n_vocab == 259
