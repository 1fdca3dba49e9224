"""The benchmark harness behind ``tokforge bench`` and ``benches/encode_bench.py``: tokforge
against every installed peer library on the same documents, ids checked.

Documents are ~4 KB cuts of the input at character boundaries (:func:`documents`). A *cold* run
(:func:`run_cold`, :func:`run_cold_rounds`) encodes each document once in a fresh process per
library; a *warm* run (:func:`run_warm`) keeps the best of several passes in this process. Every
library's ids are compared with the reference's (:func:`check_ids`); :func:`compare` runs it
all and :func:`format_table` / :func:`report_json` present it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _core
from ..encodings import get_encoding, resolve_tokenizer
from ..errors import TokforgeError
from ..registry import ALIASES, ENCODINGS, find_rank_file, known_rank_file, read_rank_file
from ..tokenizer import Tokenizer

DOC_SIZE = 4096

#: What ``pip`` installs to give the benchmark its peers (the ``bench`` extra).
INSTALL_PEERS = "pip install 'tokforge[bench]'"

__all__ = [
    "INSTALL_PEERS",
    "PEERS",
    "Peer",
    "Target",
    "documents",
    "duration",
    "estimate_seconds",
    "machine_line",
    "missing_peers",
    "run_cold",
    "run_cold_rounds",
    "run_warm",
]


def documents(text: str, size: int = DOC_SIZE) -> list[str]:
    """``text`` cut into documents of about ``size`` UTF-8 bytes, at character boundaries."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise TokforgeError(f"the document size must be a whole number of bytes >= 1, not {size!r}")
    data = text.encode("utf-8")
    out, start = [], 0
    while start < len(data):
        end = min(start + size, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end += 1
        out.append(data[start:end].decode("utf-8"))
        start = end
    return out


@dataclass(frozen=True)
class Target:
    """What to tokenize with: the ``--tokenizer`` string, and for OpenAI's encodings their name
    and local rank file (which the peers that read rank files load too)."""

    spec: str
    name: str | None = None
    rank_file: str | None = None

    @staticmethod
    def resolve(spec: str) -> Target:
        name = ALIASES.get(spec, spec)
        if name in ENCODINGS and not Path(spec).is_file():
            return Target(spec, name, str(find_rank_file(name)))
        p = Path(spec)
        if p.is_file():
            with p.open("rb") as f:
                head = f.read(1)
            if head != b"{":
                known = known_rank_file(p.read_bytes())
                if known is not None:
                    return Target(spec, known[0], str(p))
        return Target(spec)


@dataclass(frozen=True)
class Peer:
    """A library and one of its output types. ``load(target, hf_json)`` returns a function from a
    document to its ids, or raises :class:`Unavailable` with the reason."""

    key: str
    distribution: str
    output: str
    exact: bool
    load: Callable[[Target, str | None], Callable[[str], Any]]
    note: str = ""


class Unavailable(Exception):
    """A peer that cannot run here (not installed, or cannot load this tokenizer)."""


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Unavailable("not installed") from e


def _known(target: Target, what: str) -> str:
    if target.name is None:
        raise Unavailable(f"{what} only knows cl100k_base and o200k_base")
    return target.name


def _load_tokforge(target: Target, _hf: str | None) -> Tokenizer:
    if target.name is not None and target.rank_file is not None:
        return get_encoding(target.name, target.rank_file)
    return resolve_tokenizer(target.spec)


def _plain_rank_file(target: Target) -> str:
    """A path to the target's rank file that other libraries can open: the file itself, or for
    the gzip-compressed copy bundled with tokforge an uncompressed one, written once into the
    temp folder (checked against the published SHA-256 on the way)."""
    assert target.name is not None and target.rank_file is not None
    if not target.rank_file.endswith(".gz"):
        return target.rank_file
    import tempfile

    spec = ENCODINGS[target.name]
    path = Path(tempfile.gettempdir()) / f"tokforge-bench-{spec.sha256[:16]}.tiktoken"
    if not path.is_file():
        data, _ = read_rank_file(target.name, target.rank_file)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


def _tiktoken_encoding(target: Target) -> Any:
    tiktoken = _import("tiktoken")
    load = importlib.import_module("tiktoken.load")

    if target.name is not None and target.rank_file is not None:
        spec = ENCODINGS[target.name]
        return tiktoken.Encoding(
            target.name,
            pat_str=_core.preset_pattern(spec.preset),
            mergeable_ranks=load.load_tiktoken_bpe(_plain_rank_file(target)),
            special_tokens=spec.special_tokens,
        )
    tok = _load_tokforge(target, None)
    if tok.pattern is None or tok.byte_fallback is not None:
        raise Unavailable("tiktoken needs a byte-level vocabulary with a regex pretokenizer")
    return tiktoken.Encoding(
        tok.name or "custom",
        pat_str=tok.pattern,
        mergeable_ranks=tok.mergeable_ranks,
        special_tokens=tok.special_tokens,
    )


def _hf_json(target: Target, hf_json: str | None, lib: str) -> str:
    """The tokenizer.json ``lib`` loads: ``--hf-json`` when given, else tokforge's own export of
    the target (``Tokenizer.to_hf``), written once into the temp folder (cold runs in child
    processes find it there)."""
    if hf_json:
        return hf_json
    import tempfile

    key = target.spec
    if Path(target.spec).is_file():
        st = Path(target.spec).stat()
        key = f"{Path(target.spec).resolve()}:{st.st_size}:{st.st_mtime_ns}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"tokforge-bench-{digest}.json"
    if not path.is_file():
        try:
            resolve_tokenizer(target.spec).to_hf(path)
        except TokforgeError as e:
            raise Unavailable(f"{lib} needs a tokenizer.json; tokforge cannot export: {e}") from e
    return str(path)


def _load_tiktoken(target: Target, _hf: str | None) -> Callable[[str], Any]:
    fn: Callable[[str], Any] = _tiktoken_encoding(target).encode_ordinary
    return fn


def _load_tokforge_list(target: Target, _hf: str | None) -> Callable[[str], Any]:
    return _load_tokforge(target, None).encode_ordinary


def _load_tokforge_numpy(target: Target, _hf: str | None) -> Callable[[str], Any]:
    return _load_tokforge(target, None).encode_ordinary_to_numpy


def _load_quicktok(target: Target, _hf: str | None) -> Callable[[str], Any]:
    quicktok = _import("quicktok")
    enc = quicktok.get_encoding(_known(target, "quicktok-v1"))
    fn: Callable[[str], Any] = enc.encode_ordinary
    return fn


def _load_gigatoken(target: Target, _hf: str | None) -> Callable[[str], Any]:
    gigatoken = _import("gigatoken")
    name = _known(target, "gigatoken")
    # No special tokens: like every other column, special tokens' text is ordinary text.
    pre = ENCODINGS[name].preset
    tok = gigatoken.Tokenizer.from_tiktoken(_plain_rank_file(target), pre, {})
    fn: Callable[[str], Any] = tok.encode
    return fn


def _load_bpe_openai(target: Target, _hf: str | None) -> Callable[[str], Any]:
    bpe_openai = _import("bpe_openai")
    enc = bpe_openai.get_encoding(_known(target, "bpe-openai"))
    fn: Callable[[str], Any] = enc.encode_ordinary
    return fn


def _load_tokie(target: Target, hf: str | None) -> Callable[[str], Any]:
    tokie = _import("tokie")
    tok = tokie.Tokenizer.from_json(_hf_json(target, hf, "tokie"))
    return lambda d: tok.encode(d, add_special_tokens=False).ids


def _load_tokenizers(target: Target, hf: str | None) -> Callable[[str], Any]:
    tokenizers = _import("tokenizers")
    tok = tokenizers.Tokenizer.from_file(_hf_json(target, hf, "tokenizers"))
    # Special tokens' text is text here, as in the other libraries' encode_ordinary.
    tok.encode_special_tokens = True
    return lambda d: tok.encode(d, add_special_tokens=False).ids


#: Every library the benchmark knows, in table order. tiktoken is the reference.
PEERS: list[Peer] = [
    Peer("tiktoken", "tiktoken", "list", True, _load_tiktoken, "encode_ordinary"),
    Peer("tokforge", "tokforge", "list", True, _load_tokforge_list, "encode_ordinary"),
    Peer(
        "tokforge[numpy]",
        "tokforge",
        "numpy",
        True,
        _load_tokforge_numpy,
        "encode_ordinary_to_numpy",
    ),
    Peer("quicktok-v1", "quicktok-v1", "list", True, _load_quicktok, "bundled vocabulary"),
    Peer("gigatoken", "gigatoken", "numpy", True, _load_gigatoken, "same rank file"),
    Peer("bpe-openai", "bpe-openai", "list", True, _load_bpe_openai, "bundled vocabulary"),
    Peer("tokie", "tokie", "list", False, _load_tokie, "tokenizer.json"),
    Peer("tokenizers", "tokenizers", "list", False, _load_tokenizers, "tokenizer.json"),
]
_BY_KEY = {p.key: p for p in PEERS}


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def digest(ids: Any) -> str:
    """A short fingerprint of a document's ids (list or array), for comparing across
    processes."""
    import numpy as np

    return hashlib.blake2b(np.asarray(ids, dtype=np.uint32).tobytes(), digest_size=12).hexdigest()


@dataclass
class Run:
    """One library on one file in one mode: seconds of encoding, and per-document digests."""

    peer: str
    file: str
    mode: str
    seconds: float
    nbytes: int
    digests: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def mb_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds > 0 else float("nan")


#: ``wall``: elapsed time; ``cpu``: CPU time of the calling thread, steadier on a machine
#: shared with other jobs. A library that hands work to other threads is undercharged by
#: ``cpu``, which can only favour it. (Process CPU time was tried: it also charges helper
#: threads that spin while idle, such as a thread pool started at import, and made numpy
#: output look slower than list output.)
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}


def _encode_all(
    fn: Callable[[str], Any], docs: list[str], clock: Callable[[], float] = time.perf_counter
) -> tuple[float, list[Any]]:
    total = 0.0
    out = []
    for d in docs:
        t0 = clock()
        ids = fn(d)
        total += clock() - t0
        out.append(ids)
    return total, out


def _child_main() -> None:
    """Entry point of a cold-run child: loads one library, encodes each document once."""
    req = json.loads(sys.argv[1])
    target = Target(**req["target"])
    peer = _BY_KEY[req["peer"]]
    result: dict[str, Any] = {"files": []}
    try:
        fn = peer.load(target, req.get("hf_json"))
    except Unavailable as e:
        print(json.dumps({"unavailable": str(e)}))
        return
    # One call on a one-letter text first: imports and set-up a library defers to its first call
    # (numpy, thread pools, lazily built tables) are not encoding, and are reported apart.
    t0 = time.perf_counter()
    fn("a")
    result["first_call"] = time.perf_counter() - t0
    for path in req["files"]:
        docs = documents(Path(path).read_text(encoding="utf-8"), req["doc_size"])
        docs = docs[: req.get("max_docs")]
        seconds, ids = _encode_all(fn, docs, CLOCKS[req.get("clock", "wall")])
        nbytes = sum(len(d.encode("utf-8")) for d in docs)
        result["files"].append(
            {
                "file": path,
                "seconds": seconds,
                "nbytes": nbytes,
                "digests": [digest(i) for i in ids],
            }
        )
    print(json.dumps(result))


def run_cold(
    peer: Peer,
    target: Target,
    files: Sequence[str],
    *,
    doc_size: int = DOC_SIZE,
    hf_json: str | None = None,
    timeout: float = 600.0,
    clock: str = "wall",
    max_docs: int | None = None,
) -> list[Run] | str:
    """``peer`` in a fresh process, each document of each file encoded once (only the first
    ``max_docs`` of each file when given); the runs, or the reason it could not run."""
    req = {
        "peer": peer.key,
        "target": {"spec": target.spec, "name": target.name, "rank_file": target.rank_file},
        "files": [str(f) for f in files],
        "doc_size": doc_size,
        "hf_json": hf_json,
        "clock": clock,
        "max_docs": max_docs,
    }
    code = "from tokforge.bench.harness import _child_main; _child_main()"
    try:
        p = subprocess.run(
            [sys.executable, "-c", code, json.dumps(req)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return f"failed (exit {p.returncode}: {last[:100]})"
    res = json.loads(p.stdout.strip().splitlines()[-1])
    if "unavailable" in res:
        return str(res["unavailable"])
    return [
        Run(
            peer.key,
            f["file"],
            "cold",
            f["seconds"],
            f["nbytes"],
            f["digests"],
        )
        for f in res["files"]
    ]


def run_cold_rounds(
    peers: Sequence[Peer],
    target: Target,
    file_groups: Sequence[Sequence[str]],
    rounds: int,
    skipped: dict[str, str],
    *,
    doc_size: int = DOC_SIZE,
    hf_json: str | None = None,
    clock: str = "wall",
    started: Callable[[Peer, int], None] | None = None,
    finished: Callable[[Run], None] | None = None,
    max_docs: int | None = None,
) -> list[Run]:
    """Cold runs in ``rounds`` rounds, round-robin: each round runs every peer once on each group
    of files (one process per peer and group), so that a slow moment of a busy machine falls on
    every library alike; the fastest run per peer and file is kept. A peer that cannot run is
    added to ``skipped`` with the reason, and none of its runs are returned. ``started`` is told
    of each process before it runs, ``finished`` of each run it returns."""
    best: dict[tuple[str, str], Run] = {}
    for k in range(max(1, rounds)):
        for group in file_groups:
            for p in peers:
                if p.key in skipped:
                    continue
                if started:
                    started(p, k)
                res = run_cold(
                    p,
                    target,
                    group,
                    doc_size=doc_size,
                    hf_json=hf_json,
                    clock=clock,
                    max_docs=max_docs,
                )
                if isinstance(res, str):
                    skipped[p.key] = res
                    continue
                for r in res:
                    if finished:
                        finished(r)
                    if (p.key, r.file) not in best or r.seconds < best[p.key, r.file].seconds:
                        best[p.key, r.file] = r
    return [r for (key, _), r in best.items() if key not in skipped]


def run_warm(
    fn: Callable[[str], Any],
    peer: Peer,
    file: str,
    docs: list[str],
    repeat: int,
    clock: str = "wall",
) -> Run:
    """The best of ``repeat`` passes of ``fn`` over ``docs`` in this process."""
    best = float("inf")
    ids: list[Any] = []
    for _ in range(max(1, repeat)):
        seconds, ids = _encode_all(fn, docs, CLOCKS[clock])
        best = min(best, seconds)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    return Run(peer.key, file, "warm", best, nbytes, [digest(i) for i in ids])


def check_ids(runs: list[Run], reference: str) -> tuple[dict[str, str], list[str]]:
    """Per library, ``"identical (N documents)"`` or how many documents differ from the
    reference; and the failures (libraries claiming exactness that differ)."""
    ref = {(r.file, r.mode): r.digests for r in runs if r.peer == reference}
    verdict: dict[str, str] = {}
    failures: list[str] = []
    for key in dict.fromkeys(r.peer for r in runs):
        total = differ = 0
        first: str | None = None
        for r in runs:
            if r.peer != key or (r.file, r.mode) not in ref:
                continue
            expected = ref[(r.file, r.mode)]
            for i, (a, b) in enumerate(zip(expected, r.digests, strict=True)):
                total += 1
                if a != b:
                    differ += 1
                    first = first or f"{Path(r.file).name} document {i}"
        if differ == 0:
            verdict[key] = f"identical ({total} documents)"
        else:
            verdict[key] = f"DIFFER on {differ} of {total} documents (first: {first})"
            if _BY_KEY[key].exact:
                failures.append(f"{key}: {verdict[key]}")
    return verdict, failures


def duration(seconds: float) -> str:
    """``seconds`` for a person: rounded to 5 s under a minute and a half, else minutes."""
    if seconds < 90:
        return f"{max(5, round(seconds / 5) * 5):.0f} s"
    return f"{seconds / 60:.0f} min"


def format_table(runs: list[Run], peers: list[str], reference: str) -> str:
    """Rows per mode and file, a column per library: MB/s and the ratio to the reference."""
    files = list(dict.fromkeys(r.file for r in runs))
    by = {(r.mode, r.file, r.peer): r for r in runs}
    head = ["mode", "file", *(f"{p} ({_BY_KEY[p].output})" for p in peers)]
    rows = [head]
    for mode in ("cold", "warm"):
        for f in files:
            ref = by.get((mode, f, reference))
            row = [mode, Path(f).stem]
            present = False
            for p in peers:
                r = by.get((mode, f, p))
                if r is None:
                    row.append("-")
                    continue
                present = True
                cell = f"{r.mb_s:.1f}"
                if ref is not None and p != reference:
                    cell += f" ({r.mb_s / ref.mb_s:.1f}x)"
                row.append(cell)
            if present:
                rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for k, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


#: Rough costs behind :func:`estimate_seconds`, from runs on the 2-core development machine:
#: a cold process (interpreter, imports, loading the tokenizer) and the slowest peers' speed.
COLD_PROCESS_SECONDS = 1.5
SLOWEST_MB_S = 2.0
#: Writing the tokenizer.json that tokie and HF tokenizers load, the first time.
HF_EXPORT_SECONDS = 10.0


def estimate_seconds(
    n_peers: int,
    nbytes: int,
    *,
    modes: Sequence[str] = ("cold", "warm"),
    repeat: int = 3,
    cold_repeat: int = 1,
    hf_export: bool = False,
) -> float:
    """A rough upper estimate of how long :func:`compare` takes: per library, one process per
    cold round plus one encoding pass per round and per warm pass, at :data:`SLOWEST_MB_S`."""
    passes = 0
    seconds = 0.0
    if "cold" in modes:
        passes += max(1, cold_repeat)
        seconds += n_peers * max(1, cold_repeat) * COLD_PROCESS_SECONDS
    if "warm" in modes:
        passes += max(1, repeat)
    seconds += n_peers * passes * nbytes / (SLOWEST_MB_S * 1e6)
    return seconds + (HF_EXPORT_SECONDS if hf_export else 0.0)


def missing_peers(skipped: dict[str, str]) -> list[str]:
    """The peer libraries (distribution names) that were skipped as not installed."""
    names = [_BY_KEY[k].distribution for k, why in skipped.items() if why == "not installed"]
    return list(dict.fromkeys(names))


def compare(
    target: Target,
    files: Sequence[str],
    *,
    modes: Sequence[str] = ("cold", "warm"),
    repeat: int = 3,
    doc_size: int = DOC_SIZE,
    hf_json: str | None = None,
    only: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
    clock: str = "wall",
    cold_repeat: int = 1,
    max_docs: int | None = None,
) -> dict[str, Any]:
    """Runs every available library on ``files`` (the first ``max_docs`` documents of each, when
    given); returns runs, id verdicts and skips. Cold runs go in ``cold_repeat`` rounds of every
    library (round-robin), the fastest per file kept."""
    runs: list[Run] = []
    skipped: dict[str, str] = {}
    loaded: dict[str, Callable[[str], Any]] = {}
    peers = [p for p in PEERS if only is None or p.key in only]
    for p in peers:
        try:
            loaded[p.key] = p.load(target, hf_json)
        except Unavailable as e:
            skipped[p.key] = str(e)
    active = [p for p in peers if p.key in loaded]
    if "cold" in modes:
        rounds = max(1, cold_repeat)

        def started(p: Peer, k: int) -> None:
            if log:
                log(f"cold: {p.key}" + (f" (round {k + 1} of {rounds})" if rounds > 1 else ""))

        runs += run_cold_rounds(
            active,
            target,
            [files],
            rounds,
            skipped,
            doc_size=doc_size,
            hf_json=hf_json,
            clock=clock,
            started=started,
            max_docs=max_docs,
        )
    if "warm" in modes:
        for f in files:
            docs = documents(Path(f).read_text(encoding="utf-8"), doc_size)[:max_docs]
            for p in active:
                if p.key in skipped:
                    continue
                if log:
                    log(f"warm: {p.key} {Path(f).name}")
                runs.append(run_warm(loaded[p.key], p, str(f), docs, repeat, clock))
    reference = "tiktoken" if "tiktoken" in loaded and "tiktoken" not in skipped else "tokforge"
    verdict, failures = check_ids(runs, reference)
    return {
        "runs": runs,
        "peers": [p.key for p in active if p.key not in skipped],
        "reference": reference,
        "ids": verdict,
        "failures": failures,
        "skipped": skipped,
    }


def report_json(target: Target, result: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable form of :func:`compare`'s result."""
    ref = {(r.mode, r.file): r for r in result["runs"] if r.peer == result["reference"]}
    return {
        "machine": machine_line(),
        "tokenizer": target.name or target.spec,
        "versions": {
            p.distribution: version(p.distribution)
            for p in PEERS
            if version(p.distribution) != "not installed"
        },
        "reference": result["reference"],
        "results": [
            {
                "mode": r.mode,
                "file": r.file,
                "library": r.peer,
                "output": _BY_KEY[r.peer].output,
                "bytes": r.nbytes,
                "documents": len(r.digests),
                "seconds": r.seconds,
                "mb_s": r.mb_s,
                "ratio": r.mb_s / ref[(r.mode, r.file)].mb_s if (r.mode, r.file) in ref else None,
            }
            for r in result["runs"]
        ],
        "ids": result["ids"],
        "ids_identical": not result["failures"],
        "failures": result["failures"],
        "skipped": result["skipped"],
    }


def print_report(
    target: Target,
    result: dict[str, Any],
    doc_size: int,
    repeat: int,
    clock: str = "wall",
    cold_repeat: int = 1,
) -> None:
    print(f"machine: {machine_line()}")
    names = dict.fromkeys(_BY_KEY[k].distribution for k in result["peers"])
    print("versions: " + ", ".join(f"{n} {version(n)}" for n in names))
    modes = {r.mode for r in result["runs"]}
    what = []
    if "cold" in modes:
        rounds = f" (fastest of {cold_repeat} rounds)" if cold_repeat > 1 else ""
        what.append(f"cold = each document once in a fresh process{rounds}")
    if "warm" in modes:
        what.append(f"warm = best of {repeat} passes")
    print(
        f"tokenizer: {target.name or target.spec}; documents of ~{doc_size} bytes, one thread; "
        f"MB/s of UTF-8 input, {clock} time of the encode calls only "
        f"(ratio to {result['reference']}); " + ", ".join(what)
    )
    print()
    print(format_table(result["runs"], result["peers"], result["reference"]))
    print()
    for k, v in result["ids"].items():
        print(f"ids: {k} vs {result['reference']}: {v}")
    for k, why in result["skipped"].items():
        print(f"skipped: {k}: {why}")
    missing = missing_peers(result["skipped"])
    if missing:
        print(f"to compare with {', '.join(missing)}: {INSTALL_PEERS}")
    if result["failures"]:
        print("ID MISMATCH: " + "; ".join(result["failures"]), file=sys.stderr)
