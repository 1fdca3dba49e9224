"""Encoding speed of tokforge on other libraries' own models, against those libraries, with every
id checked.

    python benches/interop_bench.py                 # all models, all corpora
    python benches/interop_bench.py --vocab 32000 --corpora en_docs man_ja --repeat 5

Models are trained here, offline, on the first --train-kb KB of each shared corpus (cached in the
temp folder between runs):

- ``hf-bytelevel``: HF tokenizers' BPE trainer, Llama 3 layout (Split regex + ByteLevel,
  ignore_merges); read by tokforge with ``Tokenizer.from_hf``;
- ``hf-sentencepiece``: HF tokenizers' BPE trainer, Llama 2 layout (Prepend/Replace ``▁``
  normalizers, byte fallback, no pre-tokenizer);
- ``spm-bpe``: the ``sentencepiece`` library's BPE trainer (identity normalization, byte
  fallback, Llama 2's options); read by tokforge with ``Tokenizer.from_sentencepiece``.

Each corpus is cut into ~4 KB documents. ``single``: one call per document on one thread, best of
--repeat passes (warm). ``batch``: all documents in one batch call on --threads threads
(``encode_batch`` for tokforge and tokenizers, ``encode(list, num_threads=...)`` for
sentencepiece). MB/s of UTF-8 input; ratios are tokforge / the model's own library. The run
exits 1 if any id differs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tokforge
from tokforge.bench.harness import documents

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("TOKFORGE_SHARED") or HERE.parent.parent / "shared")
CORPORA = ["en_docs", "code_py", "man_de", "man_ja", "man_ru", "man_zh_CN"]
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def corpus(name: str) -> str:
    return (SHARED / "corpora" / f"{name}.txt").read_text(encoding="utf-8")


def training_lines(kb: int) -> list[str]:
    lines: list[str] = []
    for name in CORPORA:
        lines.extend(corpus(name)[: kb * 1000].splitlines())
    return lines


def train_hf(kind: str, vocab: int, kb: int) -> str:
    """A tokenizer.json trained by HF tokenizers; returns its path."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "hf-bytelevel":
        tok = Tokenizer(models.BPE(ignore_merges=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab,
            special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(training_lines(kb), trainer)
        doc = json.loads(tok.to_str())
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        trainer = trainers.BpeTrainer(
            vocab_size=vocab - 256,
            special_tokens=["<unk>", "<s>", "</s>"],
            limit_alphabet=1000,
            show_progress=False,
        )
        tok.train_from_iterator(training_lines(kb), trainer)
        doc = json.loads(tok.to_str())
        v = doc["model"]["vocab"]
        next_id = max(v.values()) + 1
        for b in range(256):
            v.setdefault(f"<0x{b:02X}>", next_id + b)
        doc["normalizer"] = {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        }
        doc["pre_tokenizer"] = None
        doc["decoder"] = {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        }
    path = Path(tempfile.gettempdir()) / f"tokforge-interop-{kind}-{vocab}-{kb}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return str(path)


def train_spm(vocab: int, kb: int) -> str:
    import io

    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_lines(kb)),
        model_writer=out,
        model_type="bpe",
        vocab_size=vocab,
        byte_fallback=True,
        character_coverage=0.9995,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        num_threads=2,
        minloglevel=2,
    )
    path = Path(tempfile.gettempdir()) / f"tokforge-interop-spm-{vocab}-{kb}.model"
    path.write_bytes(out.getvalue())
    return str(path)


def model_path(kind: str, vocab: int, kb: int) -> str:
    suffix = "model" if kind == "spm-bpe" else "json"
    name = "spm" if kind == "spm-bpe" else kind
    path = Path(tempfile.gettempdir()) / f"tokforge-interop-{name}-{vocab}-{kb}.{suffix}"
    if path.is_file():
        return str(path)
    t = time.perf_counter()
    p = train_spm(vocab, kb) if kind == "spm-bpe" else train_hf(kind, vocab, kb)
    print(f"trained {kind} ({vocab}) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return p


Encoder = Callable[[str], list[int]]
Batch = Callable[[list[str]], list[list[int]]]


def load(kind: str, path: str, threads: int) -> dict[str, tuple[Encoder, Batch]]:
    """Per library: (one document -> ids, documents -> ids with ``threads`` threads)."""
    if kind == "spm-bpe":
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=path)
        tok = tokforge.Tokenizer.from_sentencepiece(path)
        return {
            "sentencepiece": (sp.encode, lambda docs: sp.encode(docs, num_threads=threads)),
            "tokforge": (
                tok.encode_ordinary,
                lambda docs: tok.encode_ordinary_batch(docs, num_threads=threads),
            ),
        }
    import tokenizers

    os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
    hf = tokenizers.Tokenizer.from_file(path)
    tok = tokforge.Tokenizer.from_hf(path)
    return {
        "tokenizers": (
            lambda d: hf.encode(d, add_special_tokens=False).ids,
            lambda docs: [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)],
        ),
        "tokforge": (
            lambda d: tok.encode(d, allowed_special="all"),
            lambda docs: tok.encode_batch(docs, allowed_special="all", num_threads=threads),
        ),
    }


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["hf-bytelevel", "hf-sentencepiece", "spm-bpe"])
    ap.add_argument("--corpora", nargs="+", default=CORPORA)
    ap.add_argument("--vocab", type=int, default=16000)
    ap.add_argument("--train-kb", type=int, default=500, help="KB of each corpus to train on")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    import importlib.metadata as md

    versions = {}
    for lib in ["tokforge", "tokenizers", "sentencepiece"]:
        try:
            versions[lib] = md.version(lib)
        except md.PackageNotFoundError:
            versions[lib] = "not installed"
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"models trained on {args.train_kb} KB of each corpus, vocab {args.vocab}; "
        f"~4 KB documents; single = one call per document, best of {args.repeat}; "
        f"batch = one call, {args.threads} threads; MB/s"
    )
    print()
    rows = []
    failed = False
    header = (
        f"{'model':17} {'corpus':10} {'mode':6} {'reference':>22} {'tokforge':>10} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for kind in args.models:
        libs = load(kind, model_path(kind, args.vocab, args.train_kb), args.threads)
        ref_name = next(k for k in libs if k != "tokforge")
        for name in args.corpora:
            docs = documents(corpus(name), 4096)
            mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
            for mode in ("single", "batch"):
                speeds, outputs = {}, {}
                for lib, (one, many) in libs.items():
                    if mode == "single":
                        secs, out = best_time(
                            lambda one=one, docs=docs: [one(d) for d in docs], args.repeat
                        )
                    else:
                        secs, out = best_time(lambda many=many, docs=docs: many(docs), args.repeat)
                    speeds[lib] = mb / secs
                    outputs[lib] = out
                same = outputs["tokforge"] == outputs[ref_name]
                failed |= not same
                ratio = speeds["tokforge"] / speeds[ref_name]
                ref_cell = f"{ref_name} {speeds[ref_name]:.1f}"
                print(
                    f"{kind:17} {name:10} {mode:6} {ref_cell:>22} {speeds['tokforge']:>10.1f} "
                    f"{ratio:>5.1f}x{'' if same else '  IDS DIFFER'}"
                )
                rows.append(
                    {
                        "model": kind,
                        "corpus": name,
                        "mode": mode,
                        "reference": ref_name,
                        "mb_s": speeds,
                        "identical": same,
                    }
                )
    if args.json:
        Path(args.json).write_text(json.dumps({"versions": versions, "rows": rows}, indent=1))
    if failed:
        print("\nFAILED: tokforge's ids differ from the model's own library", file=sys.stderr)
        return 1
    print("\nids: identical to the model's own library on every document")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
