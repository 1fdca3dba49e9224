"""Every example in the package's docstrings runs: each module of ``tokforge``, the alias
modules kept for one release included."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import tokforge

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(tokforge.__path__, "tokforge.")
    if not m.name.endswith("__main__")
)


def test_the_walk_finds_the_layers():
    for name in ("tokforge.interop.formats", "tokforge.inspect.viz", "tokforge.cli.options"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, name
