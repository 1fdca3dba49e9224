"""Limit the threads of the BLAS library NumPy calls, for the duration of a ``with`` block.

NumPy's matrix products run in OpenBLAS (or another BLAS), which starts one thread per core.
For the small matrices of :mod:`tokforge.nn` those threads mostly wait on each other, and on a
shared machine they take cores from everything else, so training uses one thread unless asked.

``OPENBLAS_NUM_THREADS`` only works if set before NumPy is imported, which a library cannot
promise. So :func:`blas_threads` does what ``threadpoolctl`` does, without needing it: if
``threadpoolctl`` is installed it is used; otherwise, on Linux, the OpenBLAS library already
loaded into the process is found in ``/proc/self/maps`` and its ``openblas_set_num_threads``
(under the names NumPy's and SciPy's wheels export it: ``scipy_openblas_set_num_threads64_``,
``openblas_set_num_threads64_`` or ``openblas_set_num_threads``) is called through ``ctypes``,
and the old count restored on exit. Where neither works (macOS Accelerate, MKL without
threadpoolctl, Windows) it changes nothing and says so through :func:`blas_thread_control`.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["blas_thread_control", "blas_threads"]

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


def _openblas() -> tuple[Callable[[int], Any], Callable[[], int]] | None:
    """``(set_num_threads, get_num_threads)`` of the loaded OpenBLAS, or ``None``."""
    np.ones(1) @ np.ones(1)  # make sure NumPy's BLAS is loaded
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)  # already mapped: dlopen hands back the same library
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    getter.restype = ctypes.c_int
                    return setter, getter
    return None


def blas_thread_control() -> str:
    """How :func:`blas_threads` limits threads here: ``"threadpoolctl"``, ``"openblas"`` (the
    ctypes route) or ``"none"`` (it cannot)."""
    if importlib.util.find_spec("threadpoolctl") is not None:
        return "threadpoolctl"
    return "openblas" if _openblas() is not None else "none"


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with at most ``n`` BLAS threads (``None``: leave the count alone).

    >>> with blas_threads(1):
    ...     _ = np.ones((4, 4)) @ np.ones((4, 4))
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    if importlib.util.find_spec("threadpoolctl") is not None:
        threadpoolctl: Any = importlib.import_module("threadpoolctl")
        with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
            yield
        return
    api = _openblas()
    if api is None:
        yield
        return
    setter, getter = api
    old = int(getter())
    setter(n)
    try:
        yield
    finally:
        setter(old)
