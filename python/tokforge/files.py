"""Reading input files and writing output files, the one way every part of tokforge does it.

:func:`write_atomic` is the only writer: the bytes go to a temporary file beside the target,
are flushed to disk and renamed over it (the core's ``write_atomic``), so a full disk, a crash or
a kill leaves the old file or the new one, never a part. Before that it writes through a
symbolic link (the link's target is replaced, the link stays), refuses a destination that exists
but is not a regular file (a folder, a FIFO, a device such as ``/dev/full``), and removes
temporary files that killed writers left beside the target (only those whose process is gone).

:func:`read_bytes` reads an input file, refusing what has no end (``/dev/zero``, a FIFO without
a writer): only regular files are read. :func:`refuse_same_file` stops an output from
overwriting one of the command's own inputs.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from . import _core
from .errors import TokforgeIOError

__all__ = [
    "check_input",
    "check_output",
    "clean_stale",
    "read_bytes",
    "read_text",
    "refuse_same_file",
    "write_atomic",
]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _regular_input(path: Path) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise TokforgeIOError(f"no such file: {path}") from None
    except OSError as e:
        raise TokforgeIOError(f"{path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise TokforgeIOError(f"{path}: {_kind(st.st_mode)}, not a regular file")
    return st


def check_input(path: str | os.PathLike[str]) -> None:
    """Refuses an input that is missing or not a regular file (a folder, a FIFO, a device),
    naming it."""
    _regular_input(Path(path))


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The content of the regular file ``path``; a :class:`~tokforge.errors.TokforgeIOError`
    naming the path for a missing file, a folder, a FIFO or a device (which would block or never
    end). The stat and the read see the same file: it is opened first, then checked."""
    p = Path(path)
    _regular_input(p)  # before open: opening a FIFO without a writer blocks
    try:
        with open(p, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced in between
                raise TokforgeIOError(f"{p}: not a regular file")
            return f.read()
    except FileNotFoundError:
        raise TokforgeIOError(f"no such file: {p}") from None
    except IsADirectoryError:
        raise TokforgeIOError(f"{p}: a directory, not a regular file") from None
    except OSError as e:
        if isinstance(e, TokforgeIOError):
            raise
        raise TokforgeIOError(f"{p}: {e.strerror or e}") from None


def read_text(path: str | os.PathLike[str], errors: str = "strict") -> str:
    """:func:`read_bytes` decoded as UTF-8; invalid UTF-8 (with ``errors="strict"``) is a
    :class:`~tokforge.errors.TokforgeIOError` naming the path and the byte offset."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as e:
        raise TokforgeIOError(
            f"{os.fspath(path)}: not UTF-8 (byte {e.start}: {data[e.start : e.start + 1]!r})"
        ) from None


def _target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: a symbolic link's final target."""
    p = Path(path)
    if p.is_symlink():
        return Path(os.path.realpath(p))
    return p


def check_output(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` will replace; refuses a destination that exists and is not
    a regular file, and a missing folder."""
    target = _target(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise TokforgeIOError(f"{path}: the folder {folder} does not exist") from None
        return target
    except OSError as e:
        raise TokforgeIOError(f"{path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise TokforgeIOError(f"{path}: {_kind(st.st_mode)}; refusing to replace it with a file")
    return target


_TMP = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]+\Z")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale(target: Path) -> list[Path]:
    """Removes ``.NAME.tmp-PID-HEX`` files beside ``target`` (the core writer's temporary
    names) whose writer process no longer exists; returns what it removed."""
    folder = target.parent if str(target.parent) else Path(".")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP.match(entry.name)
        if m is None or m["name"] != target.name or _pid_alive(int(m["pid"])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see the module's description): through a
    symbolic link, never over a folder, FIFO or device, and never half a file."""
    target = check_output(path)
    clean_stale(target)
    _core.CoreBPE.write_atomic(target, bytes(data))


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_same_file(
    output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]
) -> None:
    """A :class:`~tokforge.errors.TokforgeIOError` when ``output`` is one of ``inputs`` (the
    same file under any name, through links too): writing it would destroy the input."""
    out = Path(output)
    for item in inputs:
        if _same(out, Path(item)):
            raise TokforgeIOError(
                f"{output}: the output is the input file {os.fspath(item)}; "
                "refusing to overwrite it"
            )
