"""The Python API under hostile arguments: hypothesis calls every public method of
``tokforge.Tokenizer`` (and the constructors, the stream decoder and the CLI) with wrong types
and values. Allowed outcomes: a result (checked where it has a meaning), a ``TokforgeError``, or
the built-in errors Python code raises for a wrong argument (``TypeError``, ``ValueError``,
``KeyError``, ``OverflowError``); never a Rust panic (``pyo3_runtime.PanicException``), a
``SystemError``, an ``AttributeError``/``IndexError`` from inside tokforge, or a crash.

Methods that touch files (``save``, ``to_tiktoken``, ``load``, ``from_tiktoken``) get only
file names inside a temporary folder, so a random path can never write outside it."""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tokforge
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tokforge.errors import TokforgeError

ALLOWED = (TokforgeError, TypeError, ValueError, KeyError, OverflowError)
FILE_METHODS = {"save", "to_tiktoken", "load", "from_tiktoken"}
# Every integer, the band from 100 million to 2**32 included: a stray id there once made
# Vocab::new size its tables by it and abort, and the vocabulary now refuses it cleanly
# (at most 2**20 unused ids), so the fuzzer keeps probing it.
ANY_INT = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(100_000_000, 2**32),
    st.sampled_from([0, 1, 255, 256, 2**31, 2**32 - 1, 2**32]),
)

surrogate_text = st.text(
    st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
    max_size=40,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ANY_INT,
    st.floats(allow_nan=True),
    st.text(max_size=30),
    surrogate_text,
    st.binary(max_size=30),
    st.sampled_from(["all", "<|endoftext|>", "strict", "replace", "ignore", "cl100k", "none"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.frozensets(st.one_of(st.text(max_size=8), st.integers(-5, 5)), max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.binary(max_size=4)), inner, max_size=4),
    ),
    max_leaves=12,
)

FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("TOKFORGE_API_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


def small_tokenizer() -> tokforge.Tokenizer:
    return tokforge.Tokenizer.from_merges(
        [(108, 111), (256, 119), (32, 257)],
        pretokenizer="cl100k",
        special_tokens={"<|endoftext|>": 259, "<|end": 260},
        name="fuzz",
    )


TOK = small_tokenizer()


def public_methods() -> list[str]:
    names = []
    for name, member in inspect.getmembers(tokforge.Tokenizer):
        if name.startswith("_") or name in FILE_METHODS or isinstance(member, property):
            continue
        if callable(member):
            names.append(name)
    return sorted(names)


def public_properties() -> list[str]:
    return sorted(n for n, m in inspect.getmembers(tokforge.Tokenizer) if isinstance(m, property))


@contextlib.contextmanager
def in_temp_dir() -> Iterator[Path]:
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            yield Path(d)
        finally:
            os.chdir(old)


# AttributeErrors tolerated for a wrong argument type: none since tokenizer.py checks the types
# of text, mergeable_ranks and special_tokens (found by this file).
KNOWN_ATTRIBUTE_ERRORS: tuple[str, ...] = ()


def call(fn: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    try:
        return fn(*args, **kwargs)
    except ALLOWED:
        return None
    except AttributeError as e:
        if not any(k in str(e) for k in KNOWN_ATTRIBUTE_ERRORS):
            raise
        return None
    # Anything else (PanicException is a BaseException) propagates and fails the test.


def test_encode_of_a_list_with_disallowed_special_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        TOK.encode([], disallowed_special=["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: tokforge.Tokenizer("x", pat_str="a", mergeable_ranks=[], special_tokens={}),
        lambda: tokforge.Tokenizer.from_merges([], special_tokens=True),
    ],
)
def test_constructors_with_a_non_dict_are_a_type_error(make: Any) -> None:
    with pytest.raises(TypeError):
        make()


def test_every_public_method_is_covered() -> None:
    assert {"encode", "decode", "encode_batch", "decode_with_offsets", "split"} <= set(
        public_methods()
    )


@pytest.mark.parametrize("name", public_methods())
@FUZZ_SETTINGS
@given(
    args=st.lists(values, max_size=3),
    kwargs=st.dictionaries(
        st.sampled_from(
            [
                "allowed_special",
                "disallowed_special",
                "errors",
                "num_threads",
                "text",
                "tokens",
                "token",
            ]
        ),
        values,
        max_size=2,
    ),
)
def test_methods_with_wrong_arguments(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    method = getattr(TOK, name)
    with in_temp_dir():  # a method given a str where a path goes writes there, not in the cwd
        call(method, args, kwargs)
    # The tokenizer is unchanged by whatever happened. By hand: cl100k cuts "low" and " lower";
    # l+o -> 256 "lo", lo+w -> 257 "low", " "+low -> 258 " low"; e and r stay bytes.
    assert TOK.encode("low lower") == [257, 258, 101, 114]


@FUZZ_SETTINGS
@given(text=surrogate_text, allowed=st.sampled_from(["all", set(), {"<|end"}]))
def test_encode_round_trips_any_str(text: str, allowed: Any) -> None:
    ids = TOK.encode(text, allowed_special=allowed, disallowed_special=())
    fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # as tiktoken
    assert TOK.decode(ids) == fixed
    assert TOK.encode_batch([text], allowed_special=allowed, disallowed_special=()) == [ids]


@FUZZ_SETTINGS
@given(ids=st.lists(values, max_size=6))
def test_decoders_with_wrong_ids(ids: list[Any]) -> None:
    for name in ("decode", "decode_bytes", "decode_tokens_bytes", "decode_with_offsets"):
        call(getattr(TOK, name), [ids], {})
    d = TOK.decoder_stream()
    for i in ids:
        call(d.push, [i], {})
    call(d.finish, [], {})
    call(TOK.decoder_stream, ids[:1], {})


@FUZZ_SETTINGS
@given(
    ids=st.lists(st.integers(-3, 300), max_size=30),
    errors=st.sampled_from(["replace", "strict"]),
)
def test_decode_of_valid_and_invalid_ids(ids: list[int], errors: str) -> None:
    known = [i for i in ids if 0 <= i <= 260]
    if len(known) == len(ids):
        raw = b"".join(TOK.decode_single_token_bytes(i) for i in ids)
        assert TOK.decode_bytes(ids) == raw
        try:  # the expected side alone: an exception from TOK.decode must not be caught here
            want: str | None = raw.decode("utf-8", errors)
        except UnicodeDecodeError:
            want = None
        if want is None:
            assert errors == "strict"
            with pytest.raises(UnicodeDecodeError):
                TOK.decode(ids, errors=errors)
        else:
            assert TOK.decode(ids, errors=errors) == want
    else:
        with pytest.raises(tokforge.UnknownTokenError):
            TOK.decode_bytes(ids)


@pytest.mark.parametrize("name", public_properties())
def test_properties_answer(name: str) -> None:
    getattr(TOK, name)


@FUZZ_SETTINGS
@given(
    name=values,
    pat_str=st.one_of(values, st.sampled_from([r"\w+|\W", "(", "(?=a)", ""])),
    ranks=st.one_of(values, st.dictionaries(st.binary(max_size=3), ANY_INT, max_size=6)),
    specials=st.one_of(values, st.dictionaries(st.text(max_size=6), ANY_INT, max_size=3)),
)
def test_constructor_with_wrong_arguments(
    name: Any, pat_str: Any, ranks: Any, specials: Any
) -> None:
    tok = call(
        tokforge.Tokenizer,
        [],
        {"name": name, "pat_str": pat_str, "mergeable_ranks": ranks, "special_tokens": specials},
    )
    if tok is not None:
        call(tok.encode, ["a b c"], {"allowed_special": "all"})
        call(tok.decode, [[0, 1]], {})


@FUZZ_SETTINGS
@given(merges=values, pretokenizer=values, specials=values)
def test_from_merges_with_wrong_arguments(merges: Any, pretokenizer: Any, specials: Any) -> None:
    tok = call(
        tokforge.Tokenizer.from_merges,
        [merges],
        {"pretokenizer": pretokenizer, "special_tokens": specials},
    )
    if tok is not None:
        assert tok.decode(tok.encode("hello world", disallowed_special=())) == "hello world"


@FUZZ_SETTINGS
@given(
    merges=st.lists(st.tuples(st.integers(-2, 300), st.integers(-2, 300)), max_size=20),
    text=st.text(max_size=30),
)
def test_from_merges_with_wrong_values(merges: list[tuple[int, int]], text: str) -> None:
    try:
        tok = tokforge.Tokenizer.from_merges(merges, pretokenizer="whitespace")
    except TokforgeError as e:
        assert "merge" in str(e) or "twice" in str(e) or "id" in str(e), e
        return
    assert tok.decode(tok.encode_ordinary(text)) == text


@FUZZ_SETTINGS
@given(data=st.one_of(st.binary(max_size=200), values))
def test_from_json_bytes_and_pickle_garbage(data: Any) -> None:
    call(tokforge.Tokenizer.from_json_bytes, [data], {})
    good = TOK.to_json_bytes()
    if isinstance(data, bytes) and data:
        cut = good[: len(data) % len(good)] + data
        call(tokforge.Tokenizer.from_json_bytes, [cut], {})


@FUZZ_SETTINGS
@given(
    content=st.one_of(st.binary(max_size=300), st.sampled_from([b"", b"YQ== 0\n", b"{"])),
    name=st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=10),
    kwargs=st.dictionaries(
        st.sampled_from(["pattern", "pretokenizer", "special_tokens"]), values, max_size=2
    ),
)
def test_file_methods_inside_a_temp_dir(content: bytes, name: str, kwargs: dict[str, Any]) -> None:
    assume(name not in (".", ".."))
    with in_temp_dir() as d:
        (d / name).write_bytes(content)
        call(tokforge.Tokenizer.load, [name], kwargs)
        call(tokforge.Tokenizer.from_tiktoken, [name], kwargs)
        call(TOK.save, [name + ".json"], {})
        call(TOK.to_tiktoken, [name + ".tiktoken"], {})
        if (d / (name + ".json")).exists():
            assert tokforge.Tokenizer.load(d / (name + ".json")).encode("low") == TOK.encode("low")
        for bad in (None, 3, b"\x00", "", "no/such/dir/x.json"):
            call(TOK.save, [bad], {})


CLI_WORDS = [
    "encode",
    "decode",
    "info",
    "--tokenizer",
    "cl100k",
    "o200k",
    "missing.json",
    "--json",
    "--allow-special",
    "--ordinary",
    "--count",
    "--errors",
    "strict",
    "--tokens",
    "-n",
    "--file",
    "15339",
    "-1",
    "99999999999999999999",
    "[1, 2]",
    '[1, "a"]',
    "x,y",
    "<|endoftext|>",
    "hello",
    "",
]


@FUZZ_SETTINGS
@given(argv=st.lists(st.one_of(st.sampled_from(CLI_WORDS), st.text(max_size=8)), max_size=6))
def test_cli_with_hostile_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from tokforge.cli import main

    if argv and argv[0] not in ("encode", "decode", "info"):
        argv = ["encode", *argv]  # only the commands that write nothing
    repo_shared = Path(__file__).resolve().parents[2] / "shared"
    env_before = os.environ.get("TOKFORGE_SHARED")
    os.environ.setdefault("TOKFORGE_SHARED", str(repo_shared))
    try:
        with in_temp_dir():
            try:
                code = main(argv)
            except SystemExit as e:  # argparse's usage errors
                code = e.code
    finally:
        if env_before is None:
            os.environ.pop("TOKFORGE_SHARED", None)
    capsys.readouterr()
    assert code in (0, 1, 2), code
