#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a machine with Rust, Python 3.10+ and a C compiler.
# It installs nothing into the system Python: everything goes into a virtual environment it
# creates in the repository (.venv-test/), and every build output stays in the repository:
# target/ (cargo: the release wheel's build, clippy, cargo test, fuzz), .cache/ (the wheel, pip's
# cache and temp files, pytest's and the tests' temp folders). Both are git-ignored; delete them
# to start over.
# Usage: bash tests/run_all.sh [pytest arguments]
#        TOKFORGE_SETUP_ONLY=1 bash tests/run_all.sh   # stop after the set-up (venv, wheel, deps)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
VENV=${TOKFORGE_TEST_VENV:-$ROOT/.venv-test}
CACHE=$ROOT/.cache
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-$CARGO_TARGET_DIR/fuzz}
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$CACHE/pip}
export PIP_DISABLE_PIP_VERSION_CHECK=1
# pip's build folders, pytest's tmp_path, mktemp in the fuzz step: all under .cache/tmp
export TMPDIR=$CACHE/tmp
mkdir -p "$TMPDIR" "$CACHE/wheels"

needs_chromium=0
if grep -rqs "chromium" tests/*.py && ! command -v chromium >/dev/null 2>&1 \
  && ! command -v chromium-browser >/dev/null 2>&1; then
  needs_chromium=1
fi
cat <<EOF
tokforge test run: about 15-20 minutes on 2 cores (most of it the Rust builds and pytest).
It will:
  1. create the virtual environment ${VENV#"$ROOT"/}/ with $("$PY" --version 2>&1)
     (nothing is installed into the system Python);
  2. build the release wheel once (maturin build --release, 3-5 min) into .cache/wheels/;
  3. install that wheel with the test extras into the venv: about 80 packages from PyPI
     (pytest, hypothesis, tiktoken, tokenizers, transformers, datasets, dask, mypy, ruff, ...,
     about 1 GB), cached in .cache/pip/;
EOF
if [ "$needs_chromium" = 1 ]; then
  echo "  -  install chromium with apt-get (needs root) for the HTML rendering tests;"
fi
cat <<EOF
  4. run cargo fmt, clippy, cargo test, the fuzz targets (20 s each), ruff, mypy --strict,
     stubtest, then pytest (the installed wheel, also in a fresh venv with no Rust on PATH).
Build outputs: target/ (cargo, about 900 MB), .cache/ (wheel, pip cache, temp files),
${VENV#"$ROOT"/}/. All git-ignored.

EOF

T0=$SECONDS
current=""
step_start=$SECONDS
step() {
  if [ -n "$current" ]; then echo "   done in $((SECONDS - step_start)) s"; fi
  current=$1
  step_start=$SECONDS
  printf "== [+%dm%02ds] %s\n" $(((SECONDS - T0) / 60)) $(((SECONDS - T0) % 60)) "$1"
}

step "virtual environment ${VENV#"$ROOT"/}/"
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  # missing, or left half-made by an interrupted run
  if ! "$PY" -m venv --clear "$VENV"; then
    echo "error: '$PY -m venv' failed; on Debian/Ubuntu install the venv module first:" >&2
    echo "       apt-get install python3-venv" >&2
    exit 1
  fi
fi
VPY=$VENV/bin/python
"$VPY" -m pip install --quiet --upgrade pip "maturin>=1.7,<2"

step "release wheel (maturin build --release -> .cache/wheels/)"
"$VENV/bin/maturin" build --release --quiet -o "$CACHE/wheels"
VERSION=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
WHEEL=$(ls -t "$CACHE"/wheels/tokforge-"$VERSION"-*abi3*.whl | head -1)
echo "   $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KB)"
# the slow test that installs this wheel into a fresh venv without Rust reuses it
export TOKFORGE_WHEEL=$WHEEL

step "installing the wheel with the test extras into the venv"
"$VPY" -m pip install --quiet --progress-bar off "tokforge[test] @ file://$WHEEL"
# the same version number as an earlier build: make sure this wheel is the one installed
"$VPY" -m pip install --quiet --force-reinstall --no-deps "$WHEEL"

if [ "$needs_chromium" = 1 ]; then
  step "chromium (apt-get) for the HTML rendering tests"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; the rendering tests will skip"
  else
    echo "   not root or no apt-get: skipped; the rendering tests will skip"
  fi
fi

if [ "${TOKFORGE_SETUP_ONLY:-0}" = 1 ]; then
  step "set-up done (TOKFORGE_SETUP_ONLY=1): stopping here"
  "$VPY" -c 'import tokforge, sys; print("  ", tokforge.__file__, sys.prefix)'
  exit 0
fi

step "cargo fmt --check"
cargo fmt --check
step "cargo clippy -D warnings (core, and with the python feature)"
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --features python -- -D warnings
step "cargo test"
cargo test --quiet
step "fuzz (20 s per target)"
bash fuzz/run_ci.sh
step "ruff"
"$VPY" -m ruff check python tests benches
step "mypy --strict"
"$VPY" -m mypy --strict python/tokforge
step "mypy.stubtest (the hand-written _core.pyi against the compiled module)"
(cd "$TMPDIR" && "$VPY" -m mypy.stubtest tokforge._core)
step "pytest"
# A fresh hypothesis seed each run, printed so a failure can be replayed with
# HYPOTHESIS_SEED=<seed> bash tests/run_all.sh; failing examples are also kept in the example
# database, .hypothesis/ at the repository root (git-ignored), and tried first on the next run.
HYPOTHESIS_SEED=${HYPOTHESIS_SEED:-$("$VPY" -c 'import secrets; print(secrets.randbelow(2**32))')}
echo "hypothesis seed $HYPOTHESIS_SEED"
"$VPY" -m pytest --hypothesis-seed="$HYPOTHESIS_SEED" "$@"
step "all green in $(((SECONDS - T0) / 60)) min $(((SECONDS - T0) % 60)) s"
