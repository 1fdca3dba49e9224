"""Counting, training and dataset encoding beyond one machine, on Dask (or local processes).

- :func:`count`: each task counts a group of files into a counts file's bytes (see
  :mod:`tokforge.counts`) on a worker; the counts are added up in a tree (``fan_in`` at a time)
  on the workers; only the final sum reaches the caller. Exact: the sum is the whole corpus's.
- :func:`train`: :func:`count`, then training on one machine (merging is fast and needs only
  the distinct pretokens). The merges equal :func:`tokforge.train`'s on the same files.
- :func:`encode_files`: one token shard per input file (or per ``chunk_bytes`` piece of a
  text file), written as ``.npy`` (``uint16`` when every id fits, else ``uint32``) with a
  manifest. Each shard appears atomically (a temporary file renamed into place) next to a small
  ``.json`` record with its checksum; a shard whose record matches (same source size and mtime,
  same tokenizer, same options, file checksum verified) is skipped, so a rerun, or Dask
  retrying the task of a killed worker, completes the same output without redoing work.

With ``client=None`` the work runs in local processes (:class:`~concurrent.futures.
ProcessPoolExecutor`). With a ``distributed.Client`` the files must be readable, and
``out_dir`` writable, at the same paths on every worker (a shared file system). Local
processes start with ``forkserver`` (or ``spawn``), so a script calling these functions without
a client needs the usual ``if __name__ == "__main__":`` guard.

>>> import tokforge.distributed as td                                  # doctest: +SKIP
>>> from distributed import Client, LocalCluster                       # doctest: +SKIP
>>> client = Client(LocalCluster(n_workers=8, threads_per_worker=1))   # doctest: +SKIP
>>> tok = td.train(files, 32768, client=client)                        # doctest: +SKIP
>>> manifest = td.encode_files(files, tok, "shards/", client=client)   # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal

from .. import _core
from ..errors import TokforgeError
from ..files import check_input, write_atomic
from ..tokenizer import Tokenizer
from .counts import _pretok_args, train_from_counts

__all__ = ["MANIFEST", "count", "encode_files", "train"]

log = logging.getLogger("tokforge.distributed")

#: The manifest's file name in ``out_dir``.
MANIFEST = "manifest.json"

_PathLike = str | os.PathLike[str]


# ------------------------------------------------------------------------------------------
# Running tasks: Dask when a client is given, local processes otherwise
# ------------------------------------------------------------------------------------------


def _pool(num_workers: int | None) -> ProcessPoolExecutor:
    # Not plain fork: the caller may hold threads (a Dask client, a web server) whose locks a
    # forked child would inherit locked. forkserver forks from a clean single-threaded server.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(
        max_workers=num_workers or os.cpu_count() or 1,
        mp_context=multiprocessing.get_context(method),
    )


def _map(
    client: Any, fn: Callable[..., Any], items: list[Any], num_workers: int | None
) -> list[Any]:
    """``[fn(*item) for item in items]`` on the workers, results in order."""
    if not items:
        return []
    if client is not None:
        futures = [client.submit(fn, *item, pure=False) for item in items]
        return list(client.gather(futures))
    with _pool(min(num_workers or os.cpu_count() or 1, len(items))) as pool:
        return list(pool.map(fn, *zip(*items, strict=True)))


# ------------------------------------------------------------------------------------------
# Counting and training
# ------------------------------------------------------------------------------------------


def _count_task(
    files: list[str],
    pretok: dict[str, str | None],
    special_tokens: list[str],
    text_field: str,
    errors: str,
    num_threads: int,
) -> bytes:
    c = _core.PretokenCounter(**pretok, special_tokens=special_tokens, num_threads=num_threads)
    c.add_files(files, text_field=text_field, errors=errors)
    return c.to_counts_bytes()


def _merge_task(*blobs: bytes) -> bytes:
    return _core.PretokenCounter.from_counts_bytes(list(blobs), num_threads=1).to_counts_bytes()


def _groups(files: list[str], files_per_task: int) -> list[list[str]]:
    if files_per_task < 1:
        raise TokforgeError(f"files_per_task must be at least 1, not {files_per_task}")
    return [files[i : i + files_per_task] for i in range(0, len(files), files_per_task)]


def count(
    files: Iterable[_PathLike],
    client: Any = None,
    *,
    pattern: str | None = None,
    pretokenizer: str | None = None,
    special_tokens: Sequence[str] = (),
    text_field: str = "text",
    errors: str = "strict",
    files_per_task: int = 1,
    threads_per_task: int = 1,
    fan_in: int = 8,
    num_workers: int | None = None,
) -> _core.PretokenCounter:
    """Counts the pretokens of ``files`` on Dask workers (or ``num_workers`` local processes)
    and returns the summed counter (save it with ``save_counts``, train with
    :func:`tokforge.counts.train_from_counts`). Each task counts ``files_per_task`` files with
    ``threads_per_task`` threads; counts are added ``fan_in`` at a time, on the workers."""
    paths = [str(Path(f)) for f in files]
    if not paths:
        raise TokforgeError("no files to count")
    for p in paths:
        check_input(p)
    if fan_in < 2:
        raise TokforgeError(f"fan_in must be at least 2, not {fan_in}")
    pretok = _pretok_args(pattern, pretokenizer)
    # Fail here, not on a worker, for a bad pattern or special token.
    _core.PretokenCounter(**pretok, special_tokens=list(special_tokens), num_threads=1)
    args = [
        (g, pretok, list(special_tokens), text_field, errors, threads_per_task)
        for g in _groups(paths, files_per_task)
    ]
    start = time.perf_counter()
    if client is not None:
        level = [client.submit(_count_task, *a, pure=False) for a in args]
        while len(level) > 1:  # a tree of merges, on the workers
            level = [
                client.submit(_merge_task, *level[i : i + fan_in], pure=False)
                for i in range(0, len(level), fan_in)
            ]
        blobs = [level[0].result()]
    else:
        blobs = _map(None, _count_task, args, num_workers)
    counter = _core.PretokenCounter.from_counts_bytes(blobs)
    log.info(
        "counted %d file(s), %.1f MB, in %.2f s: %d distinct pretokens",
        len(paths),
        counter.num_bytes / 1e6,
        time.perf_counter() - start,
        counter.num_distinct,
    )
    return counter


def train(
    files: Iterable[_PathLike],
    vocab_size: int | Sequence[int],
    client: Any = None,
    *,
    pattern: str | None = None,
    pretokenizer: str | None = None,
    special_tokens: Sequence[str] = (),
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
    min_pretoken_count: int = 1,
    text_field: str = "text",
    errors: str = "strict",
    files_per_task: int = 1,
    threads_per_task: int = 1,
    fan_in: int = 8,
    num_workers: int | None = None,
    progress: bool = False,
    name: str = "",
) -> Tokenizer | list[Tokenizer]:
    """Counts on the workers (:func:`count`), trains here. Same result as
    :func:`tokforge.train` on the same files and options."""
    counter = count(
        files,
        client,
        pattern=pattern,
        pretokenizer=pretokenizer,
        special_tokens=special_tokens,
        text_field=text_field,
        errors=errors,
        files_per_task=files_per_task,
        threads_per_task=threads_per_task,
        fan_in=fan_in,
        num_workers=num_workers,
    )
    return train_from_counts(
        counter,
        vocab_size,
        min_frequency=min_frequency,
        max_token_bytes=max_token_bytes,
        min_pretoken_count=min_pretoken_count,
        progress=progress,
        name=name,
    )


# ------------------------------------------------------------------------------------------
# Encoding a dataset into token shards
# ------------------------------------------------------------------------------------------


def _read_text(path: str, start: int, end: int | None) -> tuple[bytes, int]:
    """Bytes ``[start, end)`` of the (decompressed) file, widened to whole lines: a piece
    starting after 0 begins after the first newline at or past ``start``; a piece ends after the
    first newline at or past ``end``. Consecutive pieces thus cover the file exactly once.
    Returns the bytes and the offset of the first."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    f: Any = gzip.open(path, "rb") if gz else open(path, "rb")
    with f:
        if start == 0 and end is None:
            data: bytes = f.read()
            return data, 0
        if start > 0:
            f.seek(start - 1)
            f.readline()  # the line holding byte start-1 belongs to the previous piece
        pos = first = f.tell()
        out = io.BytesIO()
        while end is None or pos < end:
            line = f.readline()
            if not line:
                break
            out.write(line)
            pos += len(line)
        return out.getvalue(), first


def _documents(
    data: bytes, path: str, text_field: str | None, errors: str, offset: int = 0
) -> list[str]:
    """The texts of a piece: the whole text, or one per JSON line. Lines end at ``\n`` only
    (JSON strings may hold U+2028 and other characters ``str.splitlines`` breaks at); a record
    without the field, or with a value that is not a string, is an error naming the line, as
    in :func:`tokforge.train`."""
    text = data.decode("utf-8", errors=errors)
    if text_field is None:
        return [text]
    where = f"{path}: line" if offset == 0 else f"{path}: in the piece from byte {offset}, line"
    docs = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except RecursionError:
            raise TokforgeError(f"{where} {n}: JSON nested too deeply") from None
        except ValueError as e:
            raise TokforgeError(f"{where} {n}: not JSON ({e})") from None
        if not isinstance(record, dict):
            raise TokforgeError(
                f"{where} {n}: a JSON {type(record).__name__}, not an object with {text_field!r}"
            )
        if text_field not in record:
            raise TokforgeError(f"{where} {n}: no field {text_field!r}")
        value = record[text_field]
        if not isinstance(value, str):
            raise TokforgeError(f"{where} {n}: the value of {text_field!r} is not a string")
        docs.append(value)
    return docs


def _is_jsonl(path: str) -> bool:
    name = path.lower().removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson"))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _shard_done(shard: Path, record: Path, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The shard's record when the shard is finished for this ``key`` and intact."""
    try:
        meta: dict[str, Any] = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("key") != dict(key) or not shard.is_file():
        return None
    if shard.stat().st_size != meta.get("shard_bytes") or _sha256_file(shard) != meta.get("sha256"):
        return None
    return meta


def _encode_task(
    job: dict[str, Any],
    tokenizer: Tokenizer,
    out_dir: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Encodes one piece into ``job["shard"]`` unless it is already there; returns its record."""
    import numpy as np

    shard = Path(out_dir) / job["shard"]
    record = shard.with_suffix(".json")
    st = os.stat(job["source"])
    key = {
        "source": job["source"],
        "source_bytes": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "start": job["start"],
        "end": job["end"],
        "tokenizer_sha256": options["tokenizer_sha256"],
        "options": options["key"],
    }
    done = _shard_done(shard, record, key)
    if done is not None:
        return done
    data, offset = _read_text(job["source"], job["start"], job["end"])
    field = options["text_field"] if _is_jsonl(job["source"]) else None
    docs = _documents(data, job["source"], field, options["errors"], offset)
    allowed = options["allowed_special"]
    parts = []
    for doc in docs:
        parts.append(tokenizer.encode_to_numpy(doc, allowed_special=allowed, disallowed_special=()))
        if options["eot"] is not None:
            parts.append(np.array([options["eot"]], dtype=np.uint32))
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
    ids = ids.astype(np.dtype(options["dtype"]))
    buf = io.BytesIO()
    np.save(buf, ids, allow_pickle=False)
    payload = buf.getvalue()
    # The shard first, then its record: a record never describes a shard that is not in place.
    write_atomic(shard, payload)
    meta = {
        "shard": job["shard"],
        "source": job["source"],
        "byte_offset": offset,
        "text_bytes": len(data),
        "documents": len(docs),
        "tokens": int(ids.size),
        "dtype": options["dtype"],
        "shard_bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "key": key,
    }
    write_atomic(record, json.dumps(meta, indent=1).encode())
    return meta


def _same(x: Any) -> Any:
    return x


def _jobs(paths: list[str], chunk_bytes: int | None) -> list[dict[str, Any]]:
    jobs = []
    for i, p in enumerate(paths):
        stem = Path(p).name.removesuffix(".gz")
        size = os.path.getsize(p)
        with open(p, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        if chunk_bytes is None or gz or size <= chunk_bytes:
            jobs.append({"source": p, "start": 0, "end": None, "shard": f"{i:05d}-{stem}.npy"})
            continue
        for k, start in enumerate(range(0, size, chunk_bytes)):
            end = start + chunk_bytes if start + chunk_bytes < size else None
            jobs.append(
                {"source": p, "start": start, "end": end, "shard": f"{i:05d}-{k:04d}-{stem}.npy"}
            )
    return jobs


def encode_files(
    files: Iterable[_PathLike],
    tokenizer: Tokenizer,
    out_dir: _PathLike,
    client: Any = None,
    *,
    chunk_bytes: int | None = None,
    text_field: str = "text",
    eot: str | None = None,
    allowed_special: Literal["all"] | AbstractSet[str] = frozenset(),
    errors: str = "strict",
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Encodes each file into a token shard ``out_dir/NNNNN-<name>.npy`` and writes
    ``out_dir/manifest.json``; returns the manifest.

    Args:
        files: plain UTF-8 text files (one document each), or JSON lines (``.jsonl``,
            ``.ndjson``: one document per record, text under ``text_field``); gzip too.
        tokenizer: any :class:`~tokforge.Tokenizer` (it travels to the workers as its file's
            bytes).
        out_dir: where the shards go (created if missing).
        client: a ``distributed.Client``; ``None`` uses ``num_workers`` local processes.
        chunk_bytes: cut uncompressed files larger than this into pieces of about this size at
            line ends, a shard each (``NNNNN-KKKK-<name>.npy``); each piece is encoded on its
            own, so a token cannot span two pieces.
        eot: a special token whose id is appended after every document.
        allowed_special: special tokens whose text in the data is encoded as the special token;
            any other special token's text is encoded as ordinary text.
        errors: ``"strict"`` or ``"replace"`` for invalid UTF-8.

    Each shard holds ``encode(document)`` for each of its documents, concatenated (with ``eot``
    after each), as ``uint16`` when every id is below 65536, else ``uint32``. The manifest lists,
    per shard, the source file, the byte offset where its text starts, text bytes, documents,
    tokens and SHA-256.
    """
    paths = [str(Path(f).resolve()) for f in files]
    for p in paths:
        check_input(p)
    if chunk_bytes is not None and chunk_bytes < 1:
        raise TokforgeError(f"chunk_bytes must be positive, not {chunk_bytes}")
    if errors not in ("strict", "replace"):
        raise TokforgeError(f'errors must be "strict" or "replace", not {errors!r}')
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    eot_id = None
    if eot is not None:
        if eot not in tokenizer.special_tokens:
            raise TokforgeError(f"eot {eot!r} is not a special token of the tokenizer")
        eot_id = tokenizer.special_tokens[eot]
    dtype = "uint16" if tokenizer.max_token_value < 1 << 16 else "uint32"
    allowed: Any = allowed_special if allowed_special == "all" else sorted(allowed_special)
    tok_bytes = tokenizer.to_json_bytes()
    options = {
        "tokenizer_sha256": hashlib.sha256(tok_bytes).hexdigest(),
        "text_field": text_field,
        "errors": errors,
        "eot": eot_id,
        "dtype": dtype,
        "allowed_special": allowed if allowed == "all" else set(allowed),
        "key": {"text_field": text_field, "errors": errors, "eot": eot, "allowed": allowed},
    }
    jobs = _jobs(paths, chunk_bytes)
    start = time.perf_counter()
    if client is not None:
        # A task that returns the tokenizer, not scattered data: the scheduler recomputes a
        # task's result when the worker holding it dies, but cannot recompute scattered data
        # (the tasks depending on it were cancelled for "lost dependencies" when a worker was
        # killed). The tokenizer travels once, as its file's bytes (see Tokenizer.__reduce__).
        tok_future = client.submit(_same, tokenizer, pure=False)
        futures = [
            client.submit(_encode_task, job, tok_future, str(out), options, pure=False)
            for job in jobs
        ]
        records = list(client.gather(futures))
    else:
        records = _map(
            None, _encode_task, [(job, tokenizer, str(out), options) for job in jobs], num_workers
        )
    shards = [{k: v for k, v in r.items() if k != "key"} for r in records]
    manifest: dict[str, Any] = {
        "format": "tokforge-shards",
        "version": 1,
        "tokenizer": {
            "name": tokenizer.name,
            "n_vocab": tokenizer.n_vocab,
            "sha256": options["tokenizer_sha256"],
        },
        "dtype": dtype,
        "eot": eot,
        "shards": shards,
        "totals": {
            "files": len(paths),
            "shards": len(shards),
            "text_bytes": sum(s["text_bytes"] for s in shards),
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
        },
    }
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=1).encode())
    secs = time.perf_counter() - start
    log.info(
        "encoded %d shard(s), %.1f MB -> %d tokens in %.2f s",
        len(shards),
        manifest["totals"]["text_bytes"] / 1e6,
        manifest["totals"]["tokens"],
        secs,
    )
    return manifest
