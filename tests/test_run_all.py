"""The test command (tests/run_all.sh) tells before it installs anything, installs only into its
own venv, and keeps its build outputs and temp files inside the repository (git-ignored). Running
it is CI's job (and `TOKFORGE_SETUP_ONLY=1 bash tests/run_all.sh` checks the set-up alone); these
checks hold the script's shape."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO

SCRIPT = REPO / "tests" / "run_all.sh"


def _lines() -> list[str]:
    return SCRIPT.read_text(encoding="utf-8").splitlines()


def test_it_parses():
    p = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def test_it_says_what_it_installs_before_installing():
    lines = _lines()
    plan = next(i for i, line in enumerate(lines) if "tokforge test run: about" in line)
    # the commands that install or build: venv, pip, maturin, apt-get
    runs = re.compile(r'^\s*(if ! )?("\$(PY|VPY|VENV/bin/maturin)"|\(apt-get)')
    installs = [
        i
        for i, line in enumerate(lines)
        if runs.match(line) and re.search(r"pip install|maturin\" build|-m venv|apt-get", line)
    ]
    assert len(installs) >= 5 and min(installs) > plan
    text = "\n".join(lines[plan : min(installs)])
    for what in ("minutes", "virtual environment", "test extras", "chromium", "target/", ".cache/"):
        assert what in text, what


def test_everything_it_writes_stays_in_the_repository():
    text = SCRIPT.read_text(encoding="utf-8")
    assert not re.search(r"(^|[\s\"'=(])/tmp", text, re.M)  # no temp files outside the repo
    for var in ("CARGO_TARGET_DIR", "FUZZ_TARGET_DIR", "PIP_CACHE_DIR"):
        assert re.search(rf"export {var}=\$\{{{var}:-\$(ROOT|CACHE|CARGO_TARGET_DIR)/", text), var
    assert "export TMPDIR=$CACHE/tmp" in text
    assert "CACHE=$ROOT/.cache" in text and "VENV=${TOKFORGE_TEST_VENV:-$ROOT/.venv-test}" in text
    # everything Python runs comes from the venv, never the system interpreter
    for line in _lines():
        if re.search(r"-m (pip|pytest|mypy|ruff)\b", line) and not line.lstrip().startswith("#"):
            assert '"$VPY"' in line or '"$VENV/bin/' in line, line
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".cache/" in ignored and ".venv-test/" in ignored and "/target" in ignored
