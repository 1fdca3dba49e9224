"""``tokforge bench``: output structure and the id-equality lines (not timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import require_module, require_shared
from tokforge.cli import main


@pytest.fixture()
def text_file(tmp_path):
    p = tmp_path / "small.txt"
    p.write_text(
        "Hello world! Tokenizers split text into pieces.\n"
        "日本語のテキストです。 Привет, мир. 12345 + 678\n"
        * 40
        + "<|endoftext|> stays text here\n",
        encoding="utf-8",
    )
    return p


@pytest.fixture(autouse=True)
def _shared_env(monkeypatch):
    monkeypatch.setenv("TOKFORGE_SHARED", str(require_shared()))


def bench(capsys, path, args):
    """``tokforge bench PATH ARGS`` (``args`` split at spaces): its exit code and standard
    output."""
    code = main(["bench", str(path), *args.split()])
    return code, capsys.readouterr().out


def test_table_and_id_lines(text_file, capsys):
    code, out = bench(
        capsys, text_file, "--mode both --repeat 1 -q --only tiktoken tokforge tokforge[numpy]"
    )
    assert code == 0, out
    assert out.startswith("machine: ")
    assert "versions: " in out and "tokforge " in out
    header = next(line for line in out.splitlines() if line.startswith("mode "))
    assert "tokforge (list)" in header and "tokforge[numpy] (numpy)" in header
    rows = [line.split() for line in out.splitlines() if line.startswith(("cold ", "warm "))]
    assert [r[:2] for r in rows] == [["cold", "small"], ["warm", "small"]]
    assert "cold = each document once in a fresh process, warm = best of 1 passes" in out
    assert "ids: tokforge vs tiktoken: identical (" in out
    assert "ids: tokforge[numpy] vs tiktoken: identical (" in out


def test_json(text_file, capsys):
    require_module("tiktoken")
    code, out = bench(
        capsys,
        text_file,
        "--mode warm --repeat 1 --json --clock cpu --only tiktoken tokforge tokie",
    )
    data = json.loads(out)
    assert code == 0
    assert data["tokenizer"] == "cl100k_base"
    assert data["clock"] == "cpu"
    assert data["reference"] == "tiktoken"
    assert data["ids_identical"] is True
    assert "tokie" in data["skipped"] or "tokie" in data["ids"]
    libs = {r["library"] for r in data["results"]}
    assert {"tiktoken", "tokforge"} <= libs
    for r in data["results"]:
        assert r["mode"] == "warm" and r["documents"] >= 1 and r["mb_s"] > 0


def test_missing_file_is_an_error(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "nope.txt")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_cold_repeat_runs_round_robin_and_keeps_the_fastest(text_file, monkeypatch, capsys):
    """``--cold-repeat 3``: three rounds, each running every library once, in turn; the table
    keeps each library's fastest process. The child processes are replaced by a stand-in that
    records the order and reports a time per call (the ids come from the real tokenizer)."""
    from tokforge.bench import harness as bench_cli

    calls: list[str] = []
    seconds = {"tokforge": [3.0, 1.0, 2.0], "tokforge[numpy]": [0.5, 4.0, 4.0]}

    def fake_cold(peer, target, files, **kwargs):
        calls.append(peer.key)
        t = seconds[peer.key][calls.count(peer.key) - 1]
        fn = bench_cli._BY_KEY[peer.key].load(target, None)
        out = []
        for f in files:
            data = Path(f).read_bytes()
            docs = bench_cli.documents(data.decode("utf-8"))
            digests = [bench_cli.digest(fn(d)) for d in docs]
            out.append(bench_cli.Run(peer.key, f, "cold", t, len(data), digests))
        return out

    monkeypatch.setattr(bench_cli, "run_cold", fake_cold)
    code, out = bench(
        capsys, text_file, "--mode cold --cold-repeat 3 --json --only tokforge tokforge[numpy]"
    )
    data = json.loads(out)
    assert code == 0
    assert calls == ["tokforge", "tokforge[numpy]"] * 3
    assert data["cold_repeat"] == 3
    size = text_file.stat().st_size
    got = {r["library"]: r["mb_s"] for r in data["results"]}
    assert got["tokforge"] == pytest.approx(size / 1.0 / 1e6, rel=1e-3)
    assert got["tokforge[numpy]"] == pytest.approx(size / 0.5 / 1e6, rel=1e-3)


def test_quick_takes_the_first_documents_once(tmp_path, capsys):
    big = tmp_path / "big.txt"
    big.write_text("Hello world, tokenizers split text. 12345\n" * 4000, encoding="utf-8")
    assert big.stat().st_size > 20 * 4096
    code, out = bench(capsys, big, "--quick --json --only tokforge tokforge[numpy]")
    data = json.loads(out)
    assert code == 0
    assert {(r["mode"], r["library"]) for r in data["results"]} == {
        (m, lib) for m in ("cold", "warm") for lib in ("tokforge", "tokforge[numpy]")
    }
    for r in data["results"]:
        assert r["documents"] == 16
        assert 16 * 4096 <= r["bytes"] < 17 * 4096


def test_missing_peers_say_how_to_install_them(text_file, monkeypatch, capsys):
    """With a peer not installed, the command says so before it starts, with the estimate, and
    the report ends with the pip command."""
    from tokforge.bench import harness
    from tokforge.bench.harness import Unavailable

    real_import, real_version = harness._import, harness.version

    def no_tiktoken(module):
        if module == "tiktoken":
            raise Unavailable("not installed")
        return real_import(module)

    monkeypatch.setattr(harness, "_import", no_tiktoken)
    monkeypatch.setattr(
        harness, "version", lambda d: "not installed" if d == "tiktoken" else real_version(d)
    )
    code = main(["bench", str(text_file), "--quick", "--only", "tiktoken", "tokforge"])
    cap = capsys.readouterr()
    assert code == 0
    err = cap.err.splitlines()
    assert err[0] == "not installed: tiktoken; to compare with them: pip install 'tokforge[bench]'"
    assert err[1].startswith("benchmarking 1 libraries on 1 file(s), ")
    assert "cold + warm: roughly " in err[1]
    assert "skipped: tiktoken: not installed" in cap.out
    assert cap.out.rstrip().endswith("to compare with tiktoken: pip install 'tokforge[bench]'")


def test_the_estimate_grows_with_the_work():
    from tokforge.bench.harness import duration, estimate_seconds

    one = estimate_seconds(1, 1_000_000, repeat=1)
    assert estimate_seconds(2, 1_000_000, repeat=1) == pytest.approx(2 * one)
    assert estimate_seconds(1, 1_000_000, repeat=3) > one
    assert estimate_seconds(1, 1_000_000, cold_repeat=5) > estimate_seconds(1, 1_000_000)
    assert estimate_seconds(1, 1, modes=("warm",)) < 0.01
    assert duration(3) == "5 s" and duration(62) == "60 s" and duration(600) == "10 min"


def test_tiktoken_reads_the_bundled_rank_file_through_a_plain_copy(text_file, monkeypatch, capsys):
    """With no local rank file, the target is the bundled .gz; tiktoken (which opens a plain
    .tiktoken path) is given a checked, uncompressed copy in the temp folder."""
    pytest.importorskip("tiktoken")
    from tokforge import registry

    for k in ("TOKFORGE_SHARED", "TOKFORGE_VOCAB_DIR", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(text_file.parent))
    code, out = bench(capsys, text_file, "--mode warm --repeat 1 --json --only tiktoken tokforge")
    data = json.loads(out)
    assert code == 0
    assert data["reference"] == "tiktoken" and data["ids_identical"] is True
    assert "tiktoken" in data["ids"] and "tiktoken" not in data["skipped"]
    (copy,) = text_file.parent.glob("tokforge-bench-*.tiktoken")
    assert copy.read_bytes() == require_shared("vocabs", "cl100k_base.tiktoken").read_bytes()
    assert registry.find_rank_file("cl100k") == registry.bundled_rank_file("cl100k")
