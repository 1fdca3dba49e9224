"""The README and every docs/*.md page are tested: their Python examples run as doctests (so the
documented ids and outputs stay true), their links point at files and headings that exist, and
the README stays a short front door with the two set-up commands on top."""

from __future__ import annotations

import doctest
import re
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, require_shared

DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]
README_MAX_LINES = 250
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _run_doctests(path: Path, monkeypatch, tmp_path) -> doctest.TestResults:
    monkeypatch.setenv("TOKFORGE_SHARED", str(require_shared()))
    # the examples make their files with tempfile: keep them under this test's tmp_path
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return doctest.testfile(str(path), module_relative=False, optionflags=FLAGS, verbose=False)


def _example_count(text: str) -> int:
    """How many doctest examples the page holds: each starts with a `>>>` line."""
    return sum(1 for line in text.splitlines() if line.lstrip().startswith(">>> "))


def test_readme_examples(monkeypatch, tmp_path):
    result = _run_doctests(REPO / "README.md", monkeypatch, tmp_path)
    assert result.attempted >= 10
    assert result.failed == 0


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_docs_examples(page, monkeypatch, tmp_path):
    expected = _example_count(page.read_text(encoding="utf-8"))
    if expected == 0:
        pytest.skip(f"{page.name} has no >>> examples")
    result = _run_doctests(page, monkeypatch, tmp_path)
    assert result.attempted == expected  # every example ran, none was missed by the parser
    assert result.failed == 0


def test_readme_has_the_two_setup_commands_at_the_top():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(first_block) == 2
    # one line that works on a fresh Debian/Ubuntu with an externally managed Python: a venv first
    assert first_block[0].startswith(
        "python3 -m venv .venv && . .venv/bin/activate && pip install . && tokforge demo"
    )
    assert first_block[1].startswith("bash tests/run_all.sh")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash tests/run_all.sh" in ci and "TOKFORGE_REQUIRE_SHARED=1" in ci


def test_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; keep it at most {README_MAX_LINES} and move the "
        "rest to docs/"
    )


def _outside_code(text: str) -> list[str]:
    """The page's lines outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append(line)
    return out


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    lines = _outside_code(page.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for line in lines if (m := re.match(r"#{1,6} (.*)", line))}


def test_slug_follows_github():
    assert _slug("What counting costs (and what 1 TB would)") == (
        "what-counting-costs-and-what-1-tb-would"
    )
    assert _slug("Counts files (`TFCOUNT`, version 1)") == "counts-files-tfcount-version-1"
    assert _slug("Generation speed of tokforge.nn") == "generation-speed-of-tokforgenn"


def _broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` whose file, or whose #anchor in a .md file, does not exist."""
    broken = []
    for line in _outside_code(page.read_text(encoding="utf-8")):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"[a-z]+:", target):  # http(s):, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            if not dest.exists():
                broken.append(f"{target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


def test_broken_links_are_found(tmp_path):
    (tmp_path / "b.md").write_text("# B\n\n## Real heading\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text(
        "# A\n[ok](b.md#real-heading) [self](#a) [web](https://example.org/x)\n"
        "[gone](c.md) [bad](b.md#no-such) [x](#nowhere)\n```\n[in code](d.md)\n```\n",
        encoding="utf-8",
    )
    assert _broken_links(page) == [
        "c.md: no such file",
        "b.md#no-such: no heading #no-such in b.md",
        "#nowhere: no heading #nowhere in a.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_resolve(page):
    """Every relative link names an existing file and, with #anchor, one of its headings."""
    broken = _broken_links(page)
    assert not broken, f"{page.name}: " + "; ".join(broken)
