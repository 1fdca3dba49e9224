"""Hostile input: each case has one clear outcome, a correct result or a
``TokforgeError`` (or the right subclass) with a useful message; never a panic, an abort, a hang
or a partial file. The formats that do not exist yet (HF tokenizer.json, SentencePiece .model)
are not covered here."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tokforge
from conftest import tokforge_encoding
from tokforge.errors import (
    PatternError,
    TokforgeError,
    TokforgeIOError,
    UnknownTokenError,
    VocabError,
    VocabFileError,
)
from tokforge.training import train

BYTES = {bytes([i]): i for i in range(256)}


def bounded(fn: Callable[[], Any], seconds: float = 60.0) -> Any:
    """Runs fn in a thread and fails the test if it has not returned within `seconds` (a hang
    guard, not a speed check: encode releases the GIL, so the main thread can watch)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised in the test's thread
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"still running after {seconds} s: a hang")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def byte_tokenizer(pattern: str, specials: dict[str, int] | None = None) -> tokforge.Tokenizer:
    return tokforge.Tokenizer(
        "hostile", pat_str=pattern, mergeable_ranks=BYTES, special_tokens=specials or {}
    )


def run_python(
    code: str, timeout: float = 120, mem_gib: int | None = None
) -> subprocess.CompletedProcess:
    """Runs code in a fresh interpreter (optionally under an address-space limit), so that an
    abort or an out-of-memory kill shows up as a return code instead of ending pytest."""
    prelude = ""
    if mem_gib:
        prelude = (
            "import resource\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({mem_gib << 30}, {mem_gib << 30}))\n"
        )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ------------------------------------------------------------------ huge and deep inputs


@pytest.mark.slow
def test_100_mb_in_one_string() -> None:
    enc = tokforge_encoding("o200k_base")
    unit = "hello wörld, 日本語 text\n\t 12345 "
    text = unit * (100_000_000 // len(unit.encode()))
    assert len(text.encode()) > 99_000_000
    ids = bounded(lambda: enc.encode_ordinary(text), 300)
    unit_ids = enc.encode_ordinary(unit * 4)[:-8]
    # The text repeats, so its ids start as a shorter repetition's (but for that one's tail).
    assert ids[: len(unit_ids)] == unit_ids
    assert enc.decode(ids) == text


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
@pytest.mark.parametrize(
    "char", ["^", " ", "a", "1", "\n", "'", "日", "\u0301", "\r\n", "\U0001f600"]
)
def test_a_million_repeats_do_not_overflow(name: str, char: str) -> None:
    """Inputs known to overflow a backtracking regex's stack: the preset scanners have none."""
    enc = tokforge_encoding(name)
    text = char * 1_000_000
    ids = bounded(lambda: enc.encode(text))
    assert enc.decode(ids) == text


def test_custom_regex_on_a_million_carets_is_a_result_or_a_clear_error() -> None:
    plain = byte_tokenizer(r"[^\s]+|\s+")  # no fancy features: the regex crate, no stack
    text = "^" * 1_000_000
    assert plain.decode(bounded(lambda: plain.encode(text))) == text
    # Lookahead needs the backtracking engine, whose stack is bounded: an error, not a crash.
    fancy = byte_tokenizer(r"(?:\^(?=\^))*\^|\s")
    with pytest.raises(PatternError, match=r"stack|backtrack"):
        bounded(lambda: fancy.encode(text))


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"(a*)*\1b", "a" * 30),
        (r"(?:(a|aa)+)(?=c)\1", "a" * 2000),
        (r"(\w+\s?)+(?=x)\1", "word " * 30),
    ],
)
def test_catastrophic_backtracking_is_bounded(pattern: str, text: str) -> None:
    tok = byte_tokenizer(pattern)
    try:
        ids = bounded(lambda: tok.encode(text))
    except PatternError as e:
        assert "backtrack" in str(e)
    else:  # the engine found a way out quickly: the result must still be right
        assert tok.decode(ids) == "".join(tok.split(text))


@pytest.mark.parametrize(
    "pattern",
    [
        "(" * 10_000 + "a" + ")" * 10_000,
        "(?=" * 3000 + "a" + ")" * 3000,
        "(?:a|" * 5000 + "b" + ")" * 5000,
        "[",
        "a{4294967296}",
        "(?<x>a)(?<x>b)",
        "\\",
    ],
)
def test_patterns_that_break_regex_compilers(pattern: str) -> None:
    try:
        tok = bounded(lambda: byte_tokenizer(pattern))
    except PatternError as e:
        assert "pattern" in str(e)
    else:
        bounded(lambda: tok.encode("aaab b"))


# ------------------------------------------------------------------ ids


@pytest.mark.parametrize("bad", [-1, -(2**63), 100_261, 2**32 - 1, 2**32, 2**40, 2**63 - 1])
def test_ids_out_of_range(cl100k: tokforge.Tokenizer, bad: int) -> None:
    for call in (
        lambda: cl100k.decode([1, bad]),
        lambda: cl100k.decode_bytes([bad]),
        lambda: cl100k.decode_single_token_bytes(bad),
        lambda: cl100k.decode_tokens_bytes([bad]),
        lambda: cl100k.decode_batch([[1], [bad]]),
        lambda: cl100k.decoder_stream().push(bad),
    ):
        with pytest.raises(UnknownTokenError, match=str(bad)):
            call()


def test_ids_beyond_64_bits(cl100k: tokforge.Tokenizer) -> None:
    with pytest.raises(UnknownTokenError):
        cl100k.decode([2**70])


@pytest.mark.parametrize("bad", ["1", 1.0, None, b"\x01", [1], object()])
def test_ids_of_the_wrong_type(cl100k: tokforge.Tokenizer, bad: object) -> None:
    for call in (
        lambda: cl100k.decode([bad]),
        lambda: cl100k.decode_single_token_bytes(bad),
        lambda: cl100k.decoder_stream().push(bad),
    ):
        with pytest.raises((TypeError, TokforgeError)):
            call()
    with pytest.raises(TypeError):
        cl100k.decode("15339")


# ------------------------------------------------------------------ vocabulary files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no tokens"),
        (b"\n\n  \n", "no tokens"),
        (b"YQ== 0\nYQ== 1\n", "appears twice"),
        (b"YQ== 0\nYg== 0\n", "appears twice"),
        (b"YQ== 0\nYg=", "expected"),
        (b"YQ== 0\nYg== 1", None),  # no final newline: still a whole file
        (b"YQ== 0\nYg== -1\n", "bad rank"),
        (b"YQ== 0\nYg== 99999999999\n", "bad rank"),
        (b"YQ== 0\nYg== 4000000000\n", "far beyond"),
        (b"YQ== 0\n!!!! 1\n", "base64"),
        (b"\xff\xfe\x00garbage", "UTF-8"),
        (b" 0\n", "expected"),
        (b"YQ== 0 extra\n", "expected"),
    ],
)
def test_rank_files(tmp_path: Path, content: bytes, message: str | None) -> None:
    p = tmp_path / "v.tiktoken"
    p.write_bytes(content)
    if message is None:
        tok = tokforge.Tokenizer.load(p, pretokenizer="whitespace")
        assert tok.decode_single_token_bytes(1) == b"b"
        return
    with pytest.raises(VocabFileError, match=message) as e:
        tokforge.Tokenizer.load(p, pretokenizer="whitespace")
    assert str(p) in str(e.value)


def tokforge_json(tmp_path: Path) -> bytes:
    tok = tokforge.Tokenizer.from_merges(
        [(108, 111), (256, 119)], pretokenizer="cl100k", special_tokens={"<|eot|>": 258}
    )
    p = tmp_path / "t.json"
    tok.save(p)
    return p.read_bytes()


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda d: d[: len(d) // 2], VocabFileError),
        (lambda d: d[:1], VocabFileError),
        (lambda d: b"", TokforgeError),  # load() reads it as a rank file without a pattern
        (lambda d: d.replace(b'"version":1', b'"version":7'), VocabFileError),
        (lambda d: d.replace(b"[256,119]", b"[999,119]"), VocabFileError),
        (lambda d: d.replace(b"[256,119]", b"[-1,119]"), VocabFileError),
        (lambda d: d.replace(b'"<|eot|>":258', b'"<|eot|>":256'), (VocabFileError, VocabError)),
        (lambda d: d.replace(b'"<|eot|>":258', b'"<|eot|>":4000000000'), VocabFileError),
        (lambda d: d.replace(b'"<|eot|>":258', b'"":258'), (VocabFileError, VocabError)),
        (lambda d: d.replace(b'"format":"tokforge"', b'"format":"other"'), VocabFileError),
        (lambda d: d.replace(b'"type":"regex"', b'"type":"magic"'), VocabFileError),
        (lambda d: d.replace(b"\\\\p{L}", b"\\\\p{Nope}"), (PatternError, VocabFileError)),
    ],
)
def test_broken_tokforge_files(tmp_path: Path, edit: Callable[[bytes], bytes], error: Any) -> None:
    data = tokforge_json(tmp_path)
    bad = edit(data)
    assert bad != data or bad == b""
    p = tmp_path / "bad.json"
    p.write_bytes(bad)
    with pytest.raises(error):
        tokforge.Tokenizer.load(p)
    with pytest.raises(error):
        tokforge.Tokenizer.from_json_bytes(bad)


@pytest.mark.slow
def test_a_gigabyte_of_garbage(tmp_path: Path) -> None:
    p = tmp_path / "garbage.tiktoken"
    block = os.urandom(1 << 20)
    with p.open("wb") as f:
        for _ in range(1024):
            f.write(block)
    with pytest.raises(VocabFileError, match="UTF-8"):
        bounded(lambda: tokforge.Tokenizer.load(p, pretokenizer="whitespace"), 120)
    p.unlink()
    # A gigabyte that starts like JSON.
    with p.open("wb") as f:
        f.write(b'{"format": "tokforge", "version": 1, "name": "')
        f.truncate(1 << 30)
    with pytest.raises(VocabFileError):
        bounded(lambda: tokforge.Tokenizer.load(p), 120)


def test_load_paths_that_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(TokforgeIOError, match=r"no such file: .*missing\.json"):
        tokforge.Tokenizer.load(tmp_path / "missing.json")
    with pytest.raises(TokforgeIOError, match="directory"):
        tokforge.Tokenizer.load(tmp_path)


# ------------------------------------------------------------------ vocabularies in memory


def test_duplicate_tokens_and_ids() -> None:
    with pytest.raises(VocabError, match="twice"):
        tokforge.Tokenizer(
            "x", pat_str=r"\w+", mergeable_ranks={b"a": 0, b"b": 0}, special_tokens={}
        )
    with pytest.raises(VocabError, match="twice"):
        tokforge.Tokenizer(
            "x", pat_str=r"\w+", mergeable_ranks={b"a": 0}, special_tokens={"<s>": 0}
        )
    with pytest.raises(VocabError, match="empty"):
        byte_tokenizer(r"\w+", {"": 256})


@pytest.mark.parametrize("where", ["rank", "special"])
def test_one_huge_id_in_memory_is_a_clear_error(where: str) -> None:
    ranks = "{b'a': 0, b'b': 4_000_000_000}" if where == "rank" else "{b'a': 0}"
    specials = "{'<s>': 4_000_000_000}" if where == "special" else "{}"
    r = run_python(
        f"""
        import tokforge
        try:
            tokforge.Tokenizer(
                "x", pat_str=r"\\w+", mergeable_ranks={ranks}, special_tokens={specials}
            )
        except tokforge.errors.VocabError as e:
            print("clean:", e)
        """,
        mem_gib=4,
    )
    assert r.returncode == 0 and "clean:" in r.stdout, (r.returncode, r.stderr[-500:])


def test_special_tokens_that_overlap_each_other() -> None:
    specials = {"<s>": 256, "<s><s>": 257, "s>": 258, "<": 259, "<s": 260}
    tok = byte_tokenizer(r"\S+|\s+", specials)
    text = "<s><s>s><s< <s"
    ids = tok.encode(text, allowed_special="all")
    assert tok.decode(ids) == text
    # Leftmost, then longest: "<s><s>" wins over "<s>", and "<" alone is special.
    assert ids[:2] == [257, 258]
    # Some allowed, the others plain text: still lossless.
    for allowed in ({"<s>"}, {"s>"}, {"<"}, {"<s><s>"}):
        ids = tok.encode(text, allowed_special=allowed, disallowed_special=())
        assert tok.decode(ids) == text
    with pytest.raises(tokforge.DisallowedSpecialTokenError):
        tok.encode(text, allowed_special={"s>"})


# ------------------------------------------------------------------ training files


def test_training_file_that_disappears_before_it_is_read(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("hello world " * 200_000)
    second.write_text("more text " * 1000)

    def progress(phase: str, done: int, total: int | None) -> None:
        second.unlink(missing_ok=True)

    with pytest.raises(TokforgeIOError, match=r"b\.txt"):
        train([first, second], 300, progress=progress)


def test_training_file_deleted_while_read_trains_on_all_of_it(tmp_path: Path) -> None:
    """POSIX keeps an open file readable after unlink: the result is the whole file's."""
    p = tmp_path / "a.txt"
    p.write_text("hello world " * 2_000_000)
    expected = train([p], 270, progress=False).merges

    def progress(phase: str, done: int, total: int | None) -> None:
        p.unlink(missing_ok=True)

    p.write_text("hello world " * 2_000_000)
    assert train([p], 270, progress=progress).merges == expected


def test_training_file_truncated_while_read(tmp_path: Path) -> None:
    """Was a strict xfail (training silently used the part read); now a clear error."""
    p = tmp_path / "a.txt"
    p.write_text("hello world " * 4_000_000)

    def progress(phase: str, done: int, total: int | None) -> None:
        if p.stat().st_size > 100:
            os.truncate(p, 10)

    with pytest.raises(TokforgeIOError, match="shrank while it was being read"):
        train([p], 300, progress=progress)


def test_training_paths_that_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(TokforgeIOError, match=r"no such file: .*missing\.txt"):
        train([tmp_path / "missing.txt"], 300)
    with pytest.raises(TokforgeIOError, match="directory"):
        train([tmp_path], 300)


def test_unreadable_training_file(tmp_path: Path) -> None:
    p = tmp_path / "locked.txt"
    p.write_text("hello world " * 100)
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root: permissions do not stop reads")
        with pytest.raises(TokforgeIOError, match="ermission"):
            train([p], 300)
    finally:
        p.chmod(0o600)


# ------------------------------------------------------------------ output paths and save


@pytest.fixture
def small_tok() -> tokforge.Tokenizer:
    return tokforge.Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace")


def test_output_in_a_missing_folder(tmp_path: Path, small_tok: tokforge.Tokenizer) -> None:
    for save in (small_tok.save, small_tok.to_tiktoken):
        with pytest.raises(TokforgeIOError, match=r"the folder .*missing does not exist"):
            save(tmp_path / "missing" / "t.json")
        with pytest.raises(TokforgeIOError, match="Not a directory"):
            (tmp_path / "file").write_text("x")
            save(tmp_path / "file" / "t.json")
        with pytest.raises(TokforgeIOError, match="directory"):
            save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def read_only_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    if os.access(d, os.W_OK):  # root writes anywhere: use a folder the kernel refuses instead
        for cand in (Path("/sys"), Path("/proc/sys")):
            if cand.is_dir() and not os.access(cand / "x", os.F_OK) and not _writable(cand):
                return cand
        pytest.skip("no read-only folder available")
    return d


def _writable(d: Path) -> bool:
    try:
        (d / ".tokforge-probe").write_bytes(b"")
    except OSError:
        return False
    (d / ".tokforge-probe").unlink()
    return True


def test_output_in_a_read_only_folder(tmp_path: Path, small_tok: tokforge.Tokenizer) -> None:
    d = read_only_dir(tmp_path)
    try:
        for save in (small_tok.save, small_tok.to_tiktoken):
            with pytest.raises(TokforgeIOError) as e:
                save(d / "t.json")
            assert "t.json" in str(e.value)
        assert not (d / "t.json").exists()
    finally:
        if d.is_relative_to(tmp_path):
            d.chmod(0o755)


def test_cli_output_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tokforge.cli import main

    assert main(["encode", "x", "--tokenizer", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tokforge encode: error:") and err.count("\n") == 1
    assert main(["decode", "-5", "--tokenizer", _saved(tmp_path)]) == 1
    assert "'-5' is not an integer token id" in capsys.readouterr().err
    assert main(["decode", "99999", "--tokenizer", _saved(tmp_path)]) == 1
    assert "unknown token id 99999" in capsys.readouterr().err


def _saved(tmp_path: Path) -> str:
    p = tmp_path / "t.json"
    tokforge.Tokenizer.from_merges([(108, 111)], pretokenizer="whitespace").save(p)
    return str(p)


@pytest.mark.slow
def test_save_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    """A process killed (SIGKILL) while saving: the target is the old file or the new one,
    whole, never a partial file."""
    target = tmp_path / "t.json"
    old = tokforge.Tokenizer.from_merges([(108, 111)], pretokenizer="whitespace", name="old")
    old.save(target)
    enc = tokforge_encoding("o200k_base")  # a large file (~ MB) takes a while to write
    big = tmp_path / "big.json"
    enc.save(big)
    code = f"""
    import tokforge
    tok = tokforge.Tokenizer.load({str(big)!r})
    print("ready", flush=True)
    while True:
        tok.save({str(target)!r})
    """
    old_bytes, new_bytes = target.read_bytes(), enc.to_json_bytes()
    seen = []
    for delay in (0.05, 0.13, 0.21, 0.34, 0.55):
        with subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        data = target.read_bytes()
        # byte for byte the old file or the new one: a partial write would be neither
        assert data in (old_bytes, new_bytes), f"round {delay}: {len(data)} bytes"
        seen.append(data == new_bytes)
    # the writer ran long enough to replace the file at least once: the kills hit a live writer
    assert any(seen)
    # the temporary files of the killed writers go at the next save beside them
    old.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.json", "t.json"]


def test_cli_with_non_utf8_arguments(tmp_path: Path) -> None:
    """Non-UTF-8 bytes in argv reach Python as lone surrogates; encoding them as U+FFFD would
    change the text silently, so the command refuses, showing the bytes."""
    for argv in (["encode", b"a\xffb"], ["decode", b"\xc3"], ["info", "-t", b"t\xff.json"]):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "tokforge",
                *argv,
                *(["-t", _saved(tmp_path)] if argv[0] != "info" else []),
            ],
            capture_output=True,
            timeout=60,
        )
        assert r.returncode == 1 and r.stdout == b""
        assert r.stderr.startswith(b"tokforge: error: an argument is not valid UTF-8: b'"), r.stderr
        assert r.stderr.count(b"\n") == 1


def test_pickle_of_garbage_is_a_clear_error() -> None:
    from tokforge.tokenizer import _unpickle

    for data in (b"", b"{}", b"\xff" * 10, b'{"format": "tokforge", "version": 1}'):
        with pytest.raises(TokforgeError):
            _unpickle(data, None)
    tok = byte_tokenizer(r"\w+|\W")
    assert pickle.loads(pickle.dumps(tok)).encode("a b") == tok.encode("a b")


def test_single_token_lookups_refuse_ints_and_quote_little() -> None:
    """Found by test_api_fuzz with a random seed: ``encode_single_token(2**32)`` became
    ``bytes(2**32)`` (4 GB of zeros) and the miss message quoted all of it; the run was killed
    for memory. An int is now a TypeError, and a long miss quotes at most 64 bytes."""
    tok = byte_tokenizer("cl100k")
    with pytest.raises(TypeError, match="expected str or bytes, not int"):
        tok.encode_single_token(2**32)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tok._encode_single_piece(2**32)  # type: ignore[arg-type]
    with pytest.raises(UnknownTokenError) as err:
        tok.encode_single_token(b"\0" * 10_000_000)
    message = str(err.value)
    assert "(10000000 bytes)" in message
    assert len(message) < 200


def test_preset_names_are_taken_wherever_a_pattern_is() -> None:
    """Taken as a regex, ``"cl100k"`` matches only that word and every other text is dropped."""
    text = "hello world, 123!"
    for name, preset in (("cl100k", "cl100k"), ("cl100k_base", "cl100k"), ("gpt2", "gpt2")):
        want = tokforge.Tokenizer.from_merges([], pretokenizer=preset).encode(text)
        assert tokforge.Tokenizer.from_merges([], pattern=name).encode(text) == want
        ranks = {bytes([i]): i for i in range(256)}
        assert tokforge.Tokenizer("t", pat_str=name, mergeable_ranks=ranks).encode(text) == want
        trained = tokforge.train([text], 260, pattern=name, progress=False)
        assert trained.pretokenizer == preset
    assert want == list(text.encode())  # no merges: one id per byte, nothing lost
