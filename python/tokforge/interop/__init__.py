"""Readers that turn other tokenizer formats into HF ``tokenizer.json`` dicts.

- :mod:`tokforge.interop.sentencepiece`: SentencePiece ``.model`` files (BPE models), read with
  a small built-in protobuf decoder (the ``sentencepiece`` package is not needed).
- :mod:`tokforge.interop.gpt2`: GPT-2 style ``vocab.json`` + ``merges.txt`` (byte-level BPE).
"""

from __future__ import annotations

from tokforge.interop import gpt2, sentencepiece

__all__ = ["gpt2", "sentencepiece"]
