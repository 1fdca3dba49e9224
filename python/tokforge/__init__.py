"""tokforge: Rust-accelerated byte-level BPE with exact tiktoken parity.

>>> import tokforge
>>> tok = tokforge.Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace")
>>> tok.encode("low lower")
[257, 32, 257, 101, 114]
>>> tok.decode([257, 32, 257, 101, 114])
'low lower'

The package in layers, each importing only from those below it (a test holds this):
``errors``, ``reference``, ``protocol``, ``registry`` (known encodings); ``interop`` (foreign
formats, and ``interop.formats``: file -> core); ``inspect`` (views of any tokenizer);
``tokenizer``; ``encodings`` (``get_encoding``); ``training`` and ``nn``; ``bench``; ``cli``.
"""

from . import errors as errors
from ._version import __version__ as __version__
from .encodings import get_encoding as get_encoding
from .encodings import resolve_tokenizer as resolve_tokenizer
from .errors import DisallowedSpecialTokenError as DisallowedSpecialTokenError
from .errors import TokforgeError as TokforgeError
from .errors import UnknownTokenError as UnknownTokenError
from .inspect import compare as compare
from .inspect import explain as explain
from .inspect import lineage as lineage
from .inspect.artifacts import artifacts as artifacts
from .registry import list_encoding_names as list_encoding_names
from .sample import sample_path as sample_path
from .sample import sample_text as sample_text
from .tokenizer import StreamDecoder as StreamDecoder
from .tokenizer import Tokenizer as Tokenizer
from .training import TrainResult as TrainResult
from .training import train as train
from .training import train_merges as train_merges

__all__ = [
    "DisallowedSpecialTokenError",
    "StreamDecoder",
    "Tokenizer",
    "TokforgeError",
    "TrainResult",
    "UnknownTokenError",
    "__version__",
    "artifacts",
    "compare",
    "errors",
    "explain",
    "get_encoding",
    "lineage",
    "list_encoding_names",
    "resolve_tokenizer",
    "sample_path",
    "sample_text",
    "train",
    "train_merges",
]
