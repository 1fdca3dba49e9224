"""Inputs and outputs: every output goes through one atomic writer (no half file on a full disk,
written through links, never over a FIFO or device, never over the command's own input), every
input must be a regular file (``/dev/zero`` and a FIFO without a writer would never end), and
the command line reports each failure in one line naming the command.

The full-disk tests mount a 256 KB tmpfs (root only; skipped with the reason otherwise)."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tokforge
from tokforge.cli import main
from tokforge.errors import TokforgeError, TokforgeIOError, VocabFileError
from tokforge.nn import weights
from tokforge.nn.checkpoint import load_trained, save_trained
from tokforge.nn.config import Config
from tokforge.nn.model import Transformer

CORPUS = "low lower lowest lowly newer newest widest wider\n" * 40


@pytest.fixture
def tok() -> tokforge.Tokenizer:
    return tokforge.Tokenizer.from_merges(
        [(108, 111), (256, 119)], pretokenizer="whitespace", special_tokens={"<|eot|>": 258}
    )


@pytest.fixture
def work(tmp_path: Path, tok: tokforge.Tokenizer) -> Path:
    """A folder with a corpus, a JSONL file and a saved tokenizer."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    (tmp_path / "docs.jsonl").write_text('{"text": "low lower"}\n', encoding="utf-8")
    tok.save(tmp_path / "tok.json")
    return tmp_path


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


# ------------------------------------------------------------------ the writers, one list

_MODEL = Config(vocab_size=259, d_model=8, n_layers=1, n_heads=2, max_seq_len=8)


def _writers(tok: tokforge.Tokenizer) -> dict[str, Callable[[Path], object]]:
    model = Transformer(_MODEL)
    return {
        "Tokenizer.save": tok.save,
        "Tokenizer.to_tiktoken": tok.to_tiktoken,
        "Tokenizer.to_hf": tok.to_hf,
        "Transformer.save": lambda p: model.save(str(p)),
        "write_safetensors": lambda p: weights.write_safetensors(
            p, {"w": np.zeros((64, 64), np.float32)}, {}
        ),
        "save_gpt2": lambda p: weights.save_gpt2(p, model.params, model.config),
        "save_trained": lambda p: save_trained(p, model.params, model.config, b"{}"),
    }


def _cli_writers(work: Path) -> dict[str, list[str]]:
    """Every command that writes a file, with OUT where the output goes."""
    tok, corpus = str(work / "tok.json"), str(work / "corpus.txt")
    return {
        "inspect": ["inspect", "low lower", "-t", tok, "-o", "OUT"],
        "inspect --dump": ["inspect", "--dump", "-t", tok, "-o", "OUT"],
        "artifacts": ["artifacts", "-t", tok, "--only", "case", "-o", "OUT"],
        "compare": ["compare", "low lower", "-t", tok, "-t", tok, "-o", "OUT"],
        "stats": ["stats", corpus, "-t", tok, "-o", "OUT"],
        "train": ["train", corpus, "-v", "262", "-p", "whitespace", "-o", "OUT", "-q"],
        "count": ["count", corpus, "-p", "whitespace", "-o", "OUT", "-q"],
        "convert": ["convert", tok, "OUT", "--to", "tiktoken"],
    }


# ------------------------------------------------------------------ full disk


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 256 KB holding ``old.bin`` (4 KB) and a filler that takes every other byte."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {r.stderr.strip()}")
    try:
        (mnt / "old.bin").write_bytes(b"o" * 4096)
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == errno.ENOSPC
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _left(mnt: Path) -> list[str]:
    return sorted(p.name for p in mnt.iterdir())


def test_every_writer_on_a_full_disk_leaves_no_file_and_the_old_one_whole(
    full_disk: Path, tok: tokforge.Tokenizer
) -> None:
    for name, write in _writers(tok).items():
        for target in (full_disk / "new.bin", full_disk / "old.bin"):
            with pytest.raises(TokforgeIOError, match="No space left"):
                write(target)
            assert _left(full_disk) == ["filler", "old.bin"], name
            assert (full_disk / "old.bin").read_bytes() == b"o" * 4096, name


def test_every_cli_output_on_a_full_disk_fails_in_one_line(
    full_disk: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, argv in _cli_writers(work).items():
        for target in (full_disk / "new.out", full_disk / "old.bin"):
            code, err = _cli([str(target) if a == "OUT" else a for a in argv], capsys)
            command = argv[0]
            assert code == 1, name
            assert err.startswith(f"tokforge {command}: error:") and err.count("\n") == 1, err
            assert "No space left" in err, (name, err)
            assert _left(full_disk) == ["filler", "old.bin"], name
            assert (full_disk / "old.bin").read_bytes() == b"o" * 4096, name


def test_encode_dataset_on_a_full_disk(
    full_disk: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = full_disk / "shards"
    argv = ["encode-dataset", str(work / "corpus.txt"), "-t", str(work / "tok.json")]
    code, err = _cli([*argv, "-o", str(out), "--workers", "1"], capsys)
    assert code == 1 and err.startswith("tokforge encode-dataset: error:"), err
    assert "No space left" in err and err.count("\n") == 1
    assert not out.exists() or not any(p.suffix == ".npy" for p in out.iterdir())


# ------------------------------------------------------------------ output == input


def test_no_cli_output_overwrites_its_input(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    tok, corpus = str(work / "tok.json"), str(work / "corpus.txt")
    link = work / "link.txt"
    link.symlink_to(work / "corpus.txt")
    cases = [
        # the tokenizer read is the output
        *(
            [*argv[: argv.index("OUT")], tok, *argv[argv.index("OUT") + 1 :]]
            for argv in [a for k, a in _cli_writers(work).items() if "-t" in a or k == "convert"]
        ),
        ["train", corpus, "-v", "262", "-p", "whitespace", "-o", corpus],
        ["train", corpus, "-v", "262", "-p", "whitespace", "-o", str(link)],  # the same file
        ["count", corpus, "-p", "whitespace", "-o", corpus],
        ["inspect", "-f", corpus, "-t", tok, "-o", corpus],
        ["compare", "-f", corpus, "-t", tok, "-o", corpus],
        ["stats", corpus, "-t", tok, "-o", corpus],
    ]
    for argv in cases:
        code, err = _cli(argv, capsys)
        assert code == 1, argv
        assert "the output is the input file" in err and err.count("\n") == 1, (argv, err)
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.name != "link.txt"} == before


# ------------------------------------------------------------------ destinations


def test_save_writes_through_a_symlink(tmp_path: Path, tok: tokforge.Tokenizer) -> None:
    real = tmp_path / "real.npz"  # .npz: save_npz appends it to a name without it, as NumPy
    real.write_text("old")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    for name, write in _writers(tok).items():
        write(link)
        assert link.is_symlink() and os.readlink(link) == str(real), name
        assert real.read_bytes() != b"old", name
        real.write_text("old")


def test_destinations_that_are_not_regular_files_are_refused(
    tmp_path: Path, tok: tokforge.Tokenizer
) -> None:
    fifo = tmp_path / "fifo.npz"  # .npz: save_npz appends it to a name without it, as NumPy
    os.mkfifo(fifo)
    (tmp_path / "d.npz").mkdir()
    targets = {"a FIFO": fifo, "a directory": tmp_path / "d.npz"}
    try:
        os.mknod(tmp_path / "full.npz", 0o600 | stat.S_IFCHR, os.makedev(1, 7))  # as /dev/full
        targets["a character device"] = tmp_path / "full.npz"
    except PermissionError:
        pass  # not root: the FIFO and the folder still test the rule
    for kind, target in targets.items():
        for name, write in _writers(tok).items():
            if kind == "a directory" and name == "Tokenizer.to_hf":
                write(target)  # a folder gets tokenizer.json inside it, by design
                continue
            with pytest.raises(TokforgeIOError, match=f"{kind}; refusing"):
                write(target)
        mode = os.lstat(target).st_mode
        assert not stat.S_ISREG(mode), f"{kind} was replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["fifo.npz", "d.npz", *(["full.npz"] if "a character device" in targets else [])]
    )
    assert [p.name for p in (tmp_path / "d.npz").iterdir()] == ["tokenizer.json"]


def test_stale_temporary_files_of_dead_writers_are_removed(
    tmp_path: Path, tok: tokforge.Tokenizer
) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".t.json.tmp-{dead_pid}-1f2e"
    live = tmp_path / f".t.json.tmp-{os.getppid()}-3a"  # a live process: maybe still writing
    other = tmp_path / f".u.json.tmp-{dead_pid}-4b"  # another file's: not ours to judge
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    tok.save(tmp_path / "t.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["t.json", live.name, other.name])


# ------------------------------------------------------------------ inputs without an end


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_inputs_that_never_end_are_refused(tmp_path: Path, kind: str) -> None:
    """Each call runs in a child with a timeout: a read of /dev/zero would fill the memory, and
    opening a FIFO without a writer would block forever."""
    if kind == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    calls = [
        "tokforge.Tokenizer.load(P)",
        "tokforge.Tokenizer.from_hf(P)",
        "tokforge.Tokenizer.from_sentencepiece(P)",
        "tokforge.Tokenizer.from_gpt2(P, P)",
        "tokforge.get_encoding('cl100k_base', P)",
        "weights.load_npz(P)",
        "weights.read_safetensors(P)",
        "checkpoint.load_trained(P)",
        "tokforge.train(P, 300, progress=False)",
        "counts.count([P])",
        "distributed.encode_files([P], tokforge.Tokenizer.from_merges([]), OUT, num_workers=1)",
    ]
    code = textwrap.dedent(f"""
        import tokforge
        from tokforge.errors import TokforgeError
        from tokforge.nn import checkpoint, weights
        from tokforge.training import counts, distributed
        P, OUT = {str(path)!r}, {str(tmp_path / "out")!r}
        for call in {calls!r}:
            try:
                eval(call)
            except TokforgeError as e:
                print(call, "->", e)
            else:
                print(call, "-> accepted")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(calls)
    want = "a character device" if kind == "device" else "a FIFO"
    for line in lines:
        assert f"{want}, not a regular file" in line, line
    for argv in (["encode", "--file", str(path)], ["info", "-t", str(path)]):
        r = subprocess.run(
            [sys.executable, "-m", "tokforge", *argv], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 1
        assert r.stderr == f"tokforge {argv[0]}: error: {path}: {want}, not a regular file\n"


def test_missing_and_folder_inputs_name_the_file(work: Path, capsys) -> None:
    code, err = _cli(["encode", "--file", str(work / "missing.txt")], capsys)
    assert (code, err) == (1, f"tokforge encode: error: no such file: {work / 'missing.txt'}\n")
    code, err = _cli(["encode", "--file", str(work)], capsys)
    assert (code, err) == (1, f"tokforge encode: error: {work}: a directory, not a regular file\n")
    code, err = _cli(["encode", "--file", "missing.txt"], capsys)
    assert "[Errno" not in err and "no such file: missing.txt" in err
    vocab = work / "gpt2" / "vocab.json"
    vocab.parent.mkdir()
    vocab.write_text(json.dumps({"a": 0, "b": 1, "ab": 2}))
    (vocab.parent / "merges.txt").mkdir()
    with pytest.raises(VocabFileError, match=r"merges\.txt is not a regular file"):
        tokforge.Tokenizer.load(vocab)


# ------------------------------------------------------------------ command-line arguments


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--doc-size", "0"],
        ["bench", "--doc-size", "-1"],
        ["bench", "--repeat", "0"],
        ["encode-dataset", "x.txt", "-o", "out", "--chunk-mb", "0"],
        ["encode-dataset", "x.txt", "-o", "out", "--chunk-mb", "-1"],
        ["encode-dataset", "x.txt", "-o", "out", "--chunk-mb", "nan"],
        ["encode-dataset", "x.txt", "-o", "out", "--chunk-mb", "inf"],
        ["encode-dataset", "x.txt", "-o", "out", "--workers", "0"],
        ["count", "x.txt", "-o", "out", "--threads", "0"],
    ],
)
def test_sizes_and_counts_must_be_positive(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"tokforge {argv[0]}: error: argument {argv[-2]}: expected"), err


def test_document_size_below_one_is_refused_by_the_harness() -> None:
    from tokforge.bench.harness import documents

    for size in (0, -1, 1.5, True):
        with pytest.raises(TokforgeError, match="document size"):
            documents("abc", size)  # type: ignore[arg-type]
    assert documents("abc", 1) == ["a", "b", "c"]


@pytest.mark.parametrize("raw", ["1_000", "٣", "+5", "-5", "0x10", "1e3", "²"])
def test_decode_takes_ascii_digits_only(work: Path, raw: str, capsys) -> None:
    code, err = _cli(["decode", raw, "-t", str(work / "tok.json")], capsys)
    assert code == 1 and f"{raw!r} is not an integer token id" in err and err.count("\n") == 1


def test_non_utf8_arguments_are_refused() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tokforge", "encode", b"caf\xe9"], capture_output=True, timeout=60
    )
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr == b"tokforge: error: an argument is not valid UTF-8: b'caf\\xe9'\n"


# ------------------------------------------------------------------ one line, never a traceback


def test_deeply_nested_json_is_one_line(work: Path, capsys) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    code, err = _cli(["decode", deep, "-t", str(work / "tok.json")], capsys)
    assert (code, err) == (1, "tokforge decode: error: ids: the JSON is nested too deeply\n")
    for name, content in {
        "t.json": '{"version": "1.0", "model": ' + deep + "}",
        "u.json": '{"a": ' + deep + "}",
    }.items():
        (work / name).write_text(content)
        code, err = _cli(["info", "-t", str(work / name)], capsys)
        assert code == 1 and err.startswith("tokforge info: error:") and err.count("\n") == 1
        with pytest.raises(VocabFileError):
            tokforge.Tokenizer.load(work / name)
    header = ('{"a": ' + deep + "}").encode()
    (work / "m.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(TokforgeError, match="nested too deeply"):
        weights.read_safetensors(work / "m.safetensors")


def test_out_of_memory_is_one_line(monkeypatch, capsys) -> None:
    from tokforge.cli import basic

    def huge(*_: object) -> object:
        return np.empty(1 << 62, dtype=np.uint8)  # NumPy's _ArrayMemoryError

    monkeypatch.setattr(basic, "resolve_tokenizer", huge)
    code, err = _cli(["info"], capsys)
    assert (
        code == 1 and err.startswith("tokforge info: error: out of memory") and err.count("\n") == 1
    )

    def plain(*_: object) -> object:
        raise MemoryError

    monkeypatch.setattr(basic, "resolve_tokenizer", plain)
    assert _cli(["encode", "x"], capsys) == (1, "tokforge encode: error: out of memory\n")


def test_a_closed_stdout_ends_quietly(work: Path) -> None:
    """``tokforge ... | head -1``: the reader goes away; exit 0 with nothing on stderr."""
    ids = " ".join(["257"] * 200_000)
    with subprocess.Popen(
        [sys.executable, "-m", "tokforge", "decode", "--tokens", "-t", str(work / "tok.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(ids.encode())
        proc.stdin.close()
        assert proc.stdout.readline() == b"257\tb'low'\n"
        proc.stdout.close()
        assert proc.wait(60) == 0
        assert proc.stderr.read() == b""


def test_errors_name_the_command(work: Path, capsys) -> None:
    tok = str(work / "tok.json")
    for argv in (
        ["encode", "x", "-t", str(work / "missing.json")],
        ["decode", "99999", "-t", tok],
        ["info", "-t", str(work / "corpus.txt")],
        ["inspect", "--lineage", "99999", "-t", tok],
        ["train", str(work / "missing.txt"), "-v", "300", "-o", str(work / "o.json")],
        ["count", str(work / "missing.txt"), "-o", str(work / "o.counts")],
        ["encode-dataset", str(work / "missing.txt"), "-o", str(work / "shards"), "-t", tok],
        ["convert", str(work / "missing.json"), str(work / "o.json")],
    ):
        code, err = _cli(argv, capsys)
        assert code == 1 and err.startswith(f"tokforge {argv[0]}: error: "), (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err and "[Errno" not in err, err


# ------------------------------------------------------------------ encode-dataset's JSON lines


def test_jsonl_lines_end_at_newline_only(work: Path, tok: tokforge.Tokenizer) -> None:
    """U+2028, U+0085 and a form feed are line breaks to str.splitlines, not to JSON lines."""
    from tokforge.training import distributed

    texts = ["low\u2028lower", "a\x85b\x0cc\x1cd", "plain"]
    p = work / "odd.jsonl"
    p.write_text(
        "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), "utf-8"
    )
    assert "\u2028" in p.read_text("utf-8")  # raw, not escaped
    m = distributed.encode_files([p], tok, work / "shards", num_workers=1)
    ids = np.load(work / "shards" / m["shards"][0]["shard"]).tolist()
    assert ids == [i for t in texts for i in tok.encode(t, disallowed_special=())]
    assert m["totals"]["documents"] == 3


def test_jsonl_records_without_the_field_name_the_line(work: Path, capsys) -> None:
    p = work / "other.jsonl"
    p.write_text('{"text": "a"}\n{"content": "b"}\n', "utf-8")
    argv = ["encode-dataset", str(p), "-t", str(work / "tok.json"), "-o", str(work / "s")]
    code, err = _cli([*argv, "--workers", "1"], capsys)
    assert (code, err) == (1, f"tokforge encode-dataset: error: {p}: line 2: no field 'text'\n")
    code, err = _cli([*argv, "--workers", "1", "--jsonl-field", "content"], capsys)
    assert code == 1 and f"{p}: line 1: no field 'content'" in err
    p.write_text('{"text": "a"}\n[1]\n', "utf-8")
    code, err = _cli([*argv, "--workers", "1"], capsys)
    assert code == 1 and "line 2: a JSON list, not an object" in err


# ------------------------------------------------------------------ misleading messages


def test_files_that_are_no_tokenizer_say_so(tmp_path: Path, tok: tokforge.Tokenizer) -> None:
    good = tok.to_json_bytes()
    cases = {
        "bom.json": (b"\xef\xbb\xbf" + good, "byte order mark"),
        "utf16.json": (good.decode().encode("utf-16"), "UTF-16"),
        "binary.bin": (bytes(range(256)) * 4, "not a tokenizer file"),
        "text.txt": (b"hello world\n", "not a tokenizer file"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(VocabFileError, match=message) as e:
            tokforge.Tokenizer.load(tmp_path / name)
        assert "pass pattern" not in str(e.value)
    # a real rank file without a known pattern still gets the advice
    tok.to_tiktoken(tmp_path / "r.tiktoken")
    with pytest.raises(TokforgeError, match="pass pattern="):
        tokforge.Tokenizer.load(tmp_path / "r.tiktoken")


def test_train_argument_errors_name_the_argument() -> None:
    for size in (1.5, "300", None, True):
        with pytest.raises(TypeError, match="vocab_size must be a whole number"):
            tokforge.train(["abc"], size, progress=False)  # type: ignore[arg-type]
    with pytest.raises(tokforge.errors.PretokenizerError, match="preset name"):
        tokforge.train(["abc"], 300, pretokenizer=str.split, progress=False)  # type: ignore[arg-type]


def test_nn_loaders_raise_tokforge_errors(tmp_path: Path) -> None:
    (tmp_path / "d.npz").mkdir()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "bad.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{]")
    loaders = [weights.load_npz, load_trained, weights.read_safetensors, weights.load_gpt2]
    for loader in loaders:
        with pytest.raises(TokforgeIOError, match="no such file"):
            loader(tmp_path / "missing")
        with pytest.raises(TokforgeIOError, match="a directory"):
            loader(tmp_path / "d.npz")
    for loader in (weights.load_npz, load_trained):
        with pytest.raises(TokforgeError, match=r"not a \.npz model file"):
            loader(tmp_path / "bad.npz")
    for loader in (weights.read_safetensors, weights.load_gpt2):
        with pytest.raises(TokforgeError, match="safetensors header: not JSON"):
            loader(tmp_path / "bad.safetensors")
