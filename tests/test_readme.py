"""The README's Python examples run as doctests, so the documented ids and outputs stay true."""

from __future__ import annotations

import doctest

from conftest import REPO, require_shared


def test_readme_examples(monkeypatch):
    monkeypatch.setenv("TOKFORGE_SHARED", str(require_shared()))
    result = doctest.testfile(
        str(REPO / "README.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.attempted >= 10
    assert result.failed == 0


def test_readme_has_the_two_setup_commands_at_the_top():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(first_block) == 2
    assert first_block[0].startswith("pip install . && tokforge demo")
    assert first_block[1].startswith("bash tests/run_all.sh")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash tests/run_all.sh" in ci and "TOKFORGE_REQUIRE_SHARED=1" in ci
