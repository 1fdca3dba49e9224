"""What the command line tells a newcomer: the demo's output (its width, its length, where the
OpenAI rank files came from, the commands it suggests next), "did you mean" on a typo, and the
small views that must read as sentences (`info`, `inspect --find` without a hit, `compare`)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import tokforge
from conftest import REPO, require_shared
from tokforge import registry
from tokforge.cli import build_parser, demo, main
from tokforge.errors import TokforgeIOError
from tokforge.inspect import compare
from tokforge.inspect.artifacts import ARTIFACTS
from tokforge.inspect.viz import display_width

DEFAULT_LINES = 36  # about a screen and a half


@pytest.fixture
def shared_env(monkeypatch):
    monkeypatch.setenv("TOKFORGE_SHARED", str(require_shared("vocabs")).removesuffix("/vocabs"))


def _demo(tmp_path: Path, capsys, monkeypatch, *extra: str) -> list[str]:
    """The demo's lines, run as a newcomer would: from a folder of their own."""
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--quiet", "--out", "demo", "--vocab-size", "300", *extra]
    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def _next_steps(lines: list[str]) -> list[str]:
    """The commands after "Try next:", continuation lines (``\\``) joined."""
    at = next(i for i, line in enumerate(lines) if line.endswith("Try next:"))
    text = "\n".join(line.split("  # ")[0] for line in lines[at + 1 :])
    return [" ".join(c.split()) for c in text.replace(" \\\n", " ").splitlines()]


def test_demo_fits_80_columns_and_a_screen_and_a_half(shared_env, tmp_path, capsys, monkeypatch):
    lines = _demo(tmp_path, capsys, monkeypatch)
    assert len(lines) <= DEFAULT_LINES
    too_wide = [line for line in lines if display_width(line) > 80]
    assert too_wide == []
    out = "\n".join(lines)
    assert "MISMATCH" not in out and "[·strawberry]" in out
    # where the OpenAI encodings came from: the registry's answer, and how it was found
    joined = " ".join(line.strip() for line in lines)
    for name in ("cl100k_base", "o200k_base"):
        path = registry.find_rank_file(name).resolve()
        assert f"{name}: rank file {path} (through $TOKFORGE_SHARED)" in joined


def test_demo_ends_with_three_commands_that_parse(shared_env, tmp_path, capsys, monkeypatch):
    lines = _demo(tmp_path, capsys, monkeypatch)
    steps = _next_steps(lines)
    assert len(steps) == 3
    parser = build_parser()
    for command in steps:
        words = shlex.split(command)
        assert words[0] == "tokforge"
        args = parser.parse_args(words[1:])  # a real command with real options
        assert callable(args.func)
    # the trained file it points at exists
    assert any(str(Path("demo") / "sample-300.json") in s for s in steps)


def test_demo_long_shows_every_surprise_within_80_columns(
    shared_env, tmp_path, capsys, monkeypatch
):
    short = _demo(tmp_path, capsys, monkeypatch)
    lines = _demo(tmp_path, capsys, monkeypatch, "--long")
    assert len(lines) > len(short) + 100
    assert [line for line in lines if display_width(line) > 80] == []
    out = "\n".join(lines)
    for a in ARTIFACTS:
        assert a.title in out
    assert len(_next_steps(lines)) == 3


def test_demo_follows_the_terminal_width(shared_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "60")  # what shutil.get_terminal_size reads first
    assert demo.output_width() == 60
    lines = _demo(tmp_path, capsys, monkeypatch)
    assert [line for line in lines if display_width(line) > 60] == []
    assert len(_next_steps(lines)) == 3


def test_demo_says_in_a_sentence_why_an_encoding_is_left_out(tmp_path, capsys, monkeypatch):
    def missing(name: str) -> Path:
        raise TokforgeIOError(f"no local rank file for {name}")

    monkeypatch.setattr(registry, "find_rank_file", missing)
    monkeypatch.setattr(demo, "get_encoding", missing)
    lines = _demo(tmp_path, capsys, monkeypatch)
    assert [line for line in lines if display_width(line) > 80] == []
    text = " ".join(line.strip() for line in lines)
    for name in ("cl100k_base", "o200k_base"):
        sentence = (
            f"{name}: left out, because no local copy of its rank file was found (tokforge "
            "never downloads). Set TOKFORGE_SHARED to the folder holding vocabs/, or see "
            "`tokforge info -t cl100k` for the places searched."
        )
        assert sentence in text  # whole: wrapped between words, never cut
    steps = _next_steps(lines)
    assert len(steps) == 3 and "cl100k" not in " ".join(steps)
    for command in steps:
        build_parser().parse_args(shlex.split(command)[1:])


# ----------------------------------------------------------------------------- did you mean


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["encdoe", "hi"], "did you mean 'encode'?"),
        (["compar", "x"], "did you mean 'compare'?"),
        (["demo", "--vocab-sise", "3"], "did you mean '--vocab-size'?"),
        (["inspect", "x", "--format", "htm"], "did you mean 'html'?"),
    ],
)
def test_a_typo_gets_a_suggestion_on_stderr_and_exit_2(argv, hint, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert hint in captured.err


def test_no_suggestion_when_nothing_is_close(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["xyzzy"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'xyzzy'" in err and "did you mean" not in err


# ----------------------------------------------------------------------------- info, --find


def test_info_shortens_the_pattern_and_says_what_a_rank_file_has(shared_env, capsys):
    assert main(["info", "-t", "cl100k"]) == 0
    lines = capsys.readouterr().out.splitlines()
    fields = {line[:16].strip(): line[17:] for line in lines if line[:1] != "("}
    pattern = tokforge.get_encoding("cl100k_base").pattern
    assert fields["pattern"].endswith("…")
    assert pattern.startswith(fields["pattern"][:-1]) and len(fields["pattern"]) < len(pattern)
    assert display_width(next(line for line in lines if line.startswith("pattern"))) <= 80
    assert fields["merges"] == "(rank file: merges follow the ranks)"
    assert "None" not in "\n".join(lines)
    assert main(["info", "-t", "cl100k", "--json"]) == 0  # the JSON keeps the full pattern
    assert pattern in capsys.readouterr().out.encode().decode("unicode_escape")


def test_info_counts_the_merges_of_a_trained_tokenizer(tmp_path, capsys):
    path = tmp_path / "t.json"
    tokforge.Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="gpt2").save(path)
    assert main(["info", "-t", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^merges +2$", out, re.M)
    assert "None" not in out


def test_find_without_a_hit_prints_a_sentence(shared_env, capsys):
    assert main(["inspect", "--find", "qqqzzzxx"]) == 0
    out = capsys.readouterr().out
    assert out == "No token of cl100k_base has 'qqqzzzxx' as a substring.\n"
    assert main(["inspect", "--find", "^qqqz+$", "--regex"]) == 0
    assert capsys.readouterr().out.startswith("No token of cl100k_base has '^qqqz+$' as a regular")
    assert main(["inspect", "--find", "trawberr"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\d+ tokens match", lines[0])
    assert lines[1].split() == ["id", "token", "bytes"]


# ----------------------------------------------------------------------------- compare


def test_compare_draws_a_token_whole(shared_env, capsys):
    # a tokenizer that splits "strawberry" everywhere cl100k keeps " strawberry" whole
    toy = tokforge.Tokenizer.from_merges([(115, 116)], pretokenizer="gpt2", name="toy")
    text = compare([toy, tokforge.get_encoding("cl100k_base")], "in strawberry").to_text()
    toy_row, _, cl_row, _ = text.splitlines()
    assert "|·strawberry" in cl_row and "|·|st|r|a|w|b|e|r|r|y" in toy_row
    # both rows close the shared segment at the same column
    assert toy_row.rindex("|") == cl_row.rindex("|")


# ----------------------------------------------------------------------------- README


def test_readme_lists_every_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    at = readme.index("`tokforge --help` lists every command:")
    paragraph = readme[at : readme.index("\n\n", at)]
    listed = set(re.findall(r"`([a-z][a-z-]*)`", paragraph.split("; `tokforge COMMAND")[0]))
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert listed == commands
