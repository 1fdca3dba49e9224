"""Other tokenizer formats <-> dicts, and files -> cores.

- :mod:`tokforge.interop.formats`: the one format dispatch: which format a file is in
  (:func:`~tokforge.interop.formats.detect_format`) and the core built from it.
- :mod:`tokforge.interop.hf_json`: the parts of every ``tokenizer.json`` tokforge writes.
- :mod:`tokforge.interop.hf_export`: a tokenizer -> a ``tokenizer.json`` dict.

- :mod:`tokforge.interop.sentencepiece`: SentencePiece ``.model`` files (BPE models), read with
  a small built-in protobuf decoder (the ``sentencepiece`` package is not needed).
- :mod:`tokforge.interop.gpt2`: GPT-2 style ``vocab.json`` + ``merges.txt`` (byte-level BPE).
"""

from __future__ import annotations

from . import gpt2, sentencepiece

__all__ = ["gpt2", "sentencepiece"]
