#!/usr/bin/env bash
# The whole test suite, from a fresh machine with Rust and Python 3.10+: installs what the tests
# need, builds and installs the extension, then runs the checks in the conventions' order.
# Usage: bash tests/run_all.sh   (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

echo "== installing tokforge with its test dependencies"
"$PY" -m pip install --quiet --disable-pip-version-check ".[test]"
# Headless Chromium renders the HTML views in the visualisation tests, when they exist.
if grep -rqs "chromium" tests/*.py && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian) for the HTML rendering tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium"
  fi
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy -D warnings (core, and with the python feature)"
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --features python -- -D warnings
echo "== cargo test"
cargo test --quiet
echo "== fuzz (20 s per target)"
bash fuzz/run_ci.sh
echo "== ruff"
"$PY" -m ruff check python tests benches
echo "== mypy --strict"
"$PY" -m mypy --strict python/tokforge
echo "== mypy.stubtest (the hand-written _core.pyi against the compiled module)"
(cd /tmp && "$PY" -m mypy.stubtest tokforge._core)
echo "== pytest"
# A fresh hypothesis seed each run, printed so a failure can be replayed with
# HYPOTHESIS_SEED=<seed> bash tests/run_all.sh; failing examples are also kept in the example
# database, .hypothesis/ at the repository root (git-ignored), and tried first on the next run.
HYPOTHESIS_SEED=${HYPOTHESIS_SEED:-$("$PY" -c 'import secrets; print(secrets.randbelow(2**32))')}
echo "== hypothesis seed $HYPOTHESIS_SEED"
"$PY" -m pytest --hypothesis-seed="$HYPOTHESIS_SEED" "$@"
