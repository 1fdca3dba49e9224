"""tokforge: Rust-accelerated byte-level BPE with exact tiktoken parity.

>>> import tokforge
>>> tok = tokforge.Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace")
>>> tok.encode("low lower")
[257, 32, 257, 101, 114]
>>> tok.decode([257, 32, 257, 101, 114])
'low lower'
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import errors as errors
from .artifacts import artifacts as artifacts
from .errors import DisallowedSpecialTokenError as DisallowedSpecialTokenError
from .errors import TokforgeError as TokforgeError
from .errors import UnknownTokenError as UnknownTokenError
from .inspect import compare as compare
from .inspect import explain as explain
from .inspect import lineage as lineage
from .registry import get_encoding as get_encoding
from .registry import list_encoding_names as list_encoding_names
from .registry import resolve_tokenizer as resolve_tokenizer
from .tokenizer import StreamDecoder as StreamDecoder
from .tokenizer import Tokenizer as Tokenizer
from .train import TrainResult as TrainResult
from .train import train as train
from .train import train_merges as train_merges

try:
    __version__ = _version("tokforge")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0.0.0"


def sample_text() -> str:
    """The bundled sample corpus (original multilingual text, ~140 KB) used by ``tokforge demo``."""
    from importlib.resources import files

    return (files("tokforge") / "data" / "sample.txt").read_text(encoding="utf-8")


def sample_path() -> str:
    """The file system path of the bundled sample corpus."""
    from importlib.resources import as_file, files

    with as_file(files("tokforge") / "data" / "sample.txt") as p:
        return str(p)
