"""The bundled sample corpus (original multilingual text, ~140 KB), used by ``tokforge demo``,
``tokforge bench`` and ``tokforge convert --verify``."""

from importlib.resources import as_file, files

__all__ = ["sample_path", "sample_text"]


def sample_text() -> str:
    """The bundled sample corpus (original multilingual text, ~140 KB) used by ``tokforge demo``."""
    return (files("tokforge") / "data" / "sample.txt").read_text(encoding="utf-8")


def sample_path() -> str:
    """The file system path of the bundled sample corpus."""
    with as_file(files("tokforge") / "data" / "sample.txt") as p:
        return str(p)
