"""``tokforge train-model``, ``eval-model`` and ``compare-vocabs``: the NumPy transformer learns.

The main command line calls :func:`register` with its sub-parsers object; each command's
``func`` is a handler taking the parsed ``argparse.Namespace`` and returning the exit code: 0 on
success, 1 with a one-line ``tokforge <command>: error: ...`` message on any error it can
explain (a bad file, an unknown tokenizer, a bad option value).

    tokforge train-model corpus.txt --tokenizer bpe:1024 -o model.npz
    tokforge eval-model model.npz held_out.txt --json
    tokforge compare-vocabs corpus.txt --tokenizer bpe:256 --tokenizer bpe:2048 --plot bpb.png

``--tokenizer`` takes what ``run-model`` takes (an encoding name or a tokenizer file) or
``bpe:N``: a byte-level BPE of ``N`` ids trained on the training part of the corpus only
(``bpe:256`` is plain bytes). The corpus's last ``--val-fraction`` (10%) of bytes, cut at a line
start, is held out: never trained on, by the tokenizer or the model, and scored in bits per byte.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..encodings import resolve_tokenizer
from ..errors import TokforgeError, TokforgeIOError
from ..files import write_atomic
from ..nn.checkpoint import load_trained, save_trained
from ..nn.config import POSITIONALS, Config
from ..nn.fit import Progress, bigram_baseline, evaluate, fit, unigram_baseline
from ..nn.model import Transformer
from ..nn.weights import flatten_params
from ..tokenizer import Tokenizer
from ..training import train as train_bpe
from .options import Subparsers

__all__ = [
    "CompareRow",
    "compare_vocabs_command",
    "eval_model_command",
    "load_trained_model",
    "register",
    "split_corpus",
    "train_model_command",
]

# Sized so train-model finishes in about two minutes on one laptop core (0.2 s per step at
# 1024 ids, measured on 2 shared cores): d_model 128, 2 layers, 4 heads, 128-token windows,
# 16 per batch, 600 steps. compare-vocabs trains one model per tokenizer, so it defaults to
# fewer steps. The head is tied by default, as in GPT-2. On the sample corpus (bpe:512) an untied
# head was ahead after 200 steps (4.08 bits per byte against 4.32) but behind after 600 (4.06
# against 3.72): its extra vocab x d_model matrix overfits 76k training tokens.
_SHAPE = {"d_model": 128, "n_layers": 2, "n_heads": 4}
_TRAIN_STEPS, _COMPARE_STEPS = 600, 300


# ---------------------------------------------------------------------------------------------
# Shared pieces


def read_text(path: str | os.PathLike[str]) -> str:
    """A UTF-8 text file, or a clear :class:`TokforgeIOError`/:class:`TokforgeError`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise TokforgeIOError(f"{p}: cannot read ({e.strerror or e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TokforgeError(f"{p}: not UTF-8 text (byte {e.start})") from None


def split_corpus(text: str, val_fraction: float) -> tuple[str, str]:
    """``(train, held_out)``: the held-out part is the last ``val_fraction`` of the bytes,
    moved forward to the next line start so no line is cut.

    >>> split_corpus("one\\ntwo\\nthree\\nfour\\n", 0.3)
    ('one\\ntwo\\nthree\\n', 'four\\n')
    """
    if not 0 < val_fraction < 1:
        raise TokforgeError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    raw = text.encode("utf-8")
    cut = int(len(raw) * (1 - val_fraction))
    newline = raw.find(b"\n", cut - 1) if cut > 0 else -1
    cut = newline + 1 if 0 <= newline < len(raw) - 1 else cut
    while cut < len(raw) and (raw[cut] & 0xC0) == 0x80:  # never split a character
        cut += 1
    train, held = raw[:cut].decode("utf-8"), raw[cut:].decode("utf-8")
    if not train.strip() or not held.strip():
        raise TokforgeError(
            f"corpus of {len(raw)} bytes is too small to hold out {val_fraction:.0%} of it"
        )
    return train, held


def get_tokenizer(spec: str, train_text: str) -> Tokenizer:
    """``bpe:N`` trains a byte-level BPE of ``N`` ids on ``train_text``; anything else goes to
    :func:`tokforge.resolve_tokenizer`."""
    if spec.startswith("bpe:"):
        try:
            size = int(spec[4:])
        except ValueError:
            raise TokforgeError(f"--tokenizer {spec}: expected bpe:N with N an integer") from None
        tok = train_bpe([train_text], size, progress=False, name=spec)
        if not isinstance(tok, Tokenizer):  # one size in, one tokenizer out
            raise TokforgeError(f"--tokenizer {spec}: training returned {type(tok).__name__}")
        return tok
    return resolve_tokenizer(spec)


def encode(tok: Tokenizer, text: str) -> np.ndarray:
    """All of ``text`` as ordinary tokens (special-token text is just text here)."""
    return np.asarray(tok.encode_ordinary(text), dtype=np.int64)


def scored_bytes(tok: Tokenizer, text: str, ids: np.ndarray) -> int:
    """Bytes spelled by ``ids[1:]``: the tokens a model is scored on (the first has no
    context)."""
    return len(text.encode("utf-8")) - len(tok.decode_single_token_bytes(int(ids[0])))


def load_trained_model(path: str | os.PathLike[str], tokenizer: str | None = None) -> Transformer:
    """A model file from ``train-model`` with the tokenizer it records attached (or the one
    named by ``tokenizer``, for files that record none). What ``run-model --weights`` needs."""
    trained = load_trained(path)
    if tokenizer is not None:
        tok = resolve_tokenizer(tokenizer)
    elif trained.tokenizer_json is not None:
        tok = Tokenizer.from_json_bytes(trained.tokenizer_json)
    else:
        raise TokforgeError(f"{os.fspath(path)} does not record its tokenizer: pass --tokenizer")
    if tok.n_vocab > trained.config.vocab_size:
        raise TokforgeError(
            f"the weights know {trained.config.vocab_size} tokens but the tokenizer has "
            f"{tok.n_vocab}: not the tokenizer the model was trained with"
        )
    return Transformer(trained.config, params=trained.params, tokenizer=tok)


class ProgressBar:
    """A one-line bar on ``out`` redrawn after each step: steps, loss, validation loss, time.
    On a terminal it redraws in place; elsewhere (a log file) it prints a line every 10%."""

    def __init__(self, label: str, out: TextIO, width: int = 24) -> None:
        self.label, self.out, self.width = label, out, width
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last_decile = -1

    def __call__(self, p: Progress) -> None:
        done = int(self.width * p.step / p.steps)
        val = f"  val {p.val_loss:.3f}" if p.val_loss is not None else ""
        line = (
            f"{self.label} [{'#' * done}{'.' * (self.width - done)}] {p.step}/{p.steps}"
            f"  loss {p.loss:.3f}{val}  {time.perf_counter() - self.start:.0f}s"
        )
        if self.tty:
            self.out.write("\r" + line + ("\n" if p.step == p.steps else ""))
            self.out.flush()
        elif (decile := 10 * p.step // p.steps) != self.last_decile:
            self.last_decile = decile
            print(line, file=self.out, flush=True)


def _add_training_options(p: argparse.ArgumentParser, steps: int) -> None:
    t = p.add_argument_group("model and training")
    t.add_argument("--steps", type=int, default=steps, help="optimizer steps (%(default)s)")
    t.add_argument("--batch-size", type=int, default=16, help="windows per step (%(default)s)")
    t.add_argument("--seq-len", type=int, default=128, help="tokens per window (%(default)s)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (%(default)s)")
    t.add_argument("--d-model", type=int, default=_SHAPE["d_model"], help="width (%(default)s)")
    t.add_argument(
        "--layers", dest="n_layers", type=int, default=_SHAPE["n_layers"], help="(%(default)s)"
    )
    t.add_argument(
        "--heads", dest="n_heads", type=int, default=_SHAPE["n_heads"], help="(%(default)s)"
    )
    t.add_argument("--kv-heads", dest="n_kv_heads", type=int, help="fewer than --heads: GQA")
    t.add_argument("--positional", choices=POSITIONALS, default="learned", help="(%(default)s)")
    t.add_argument(
        "--untied",
        action="store_true",
        help="a separate output head (default: the head reuses the embedding, as in GPT-2)",
    )
    t.add_argument("--seed", type=int, default=0, help="weights and batches (%(default)s)")
    t.add_argument("--val-fraction", type=float, default=0.1, help="held-out tail (%(default)s)")
    t.add_argument("--threads", type=int, default=1, help="BLAS threads (%(default)s)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace, tok: Tokenizer) -> Config:
    return Config(
        vocab_size=tok.n_vocab,
        d_model=args.d_model,
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        n_kv_heads=args.n_kv_heads,
        max_seq_len=args.seq_len,
        positional=args.positional,
        tie_embeddings=not args.untied,
    )


def _report_errors(command: str, run: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (ValueError, OSError, KeyError, ImportError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"tokforge {command}: error: {message}", file=sys.stderr)
            return 1

    return handler


def _count_params(model: Transformer) -> tuple[int, int]:
    """(embedding and head, everything else)."""
    p = model.params
    emb = p["wte"].size + (p["lm_head"]["w"].size if "lm_head" in p else 0)
    total = sum(v.size for v in flatten_params(p).values())
    return int(emb), int(total - emb)


# ---------------------------------------------------------------------------------------------
# train-model


def register(subparsers: Subparsers) -> None:
    """Add ``train-model``, ``eval-model`` and ``compare-vocabs`` to an ``argparse`` sub-parsers
    object (from ``add_subparsers()``)."""
    p = subparsers.add_parser(
        "train-model",
        help="train the NumPy transformer on a text file (backprop in NumPy)",
        description=(
            "Train a small transformer on CORPUS tokenized by --tokenizer, holding out the "
            "last part; print held-out bits per byte next to unigram and bigram baselines and a "
            "greedy continuation of a held-out line. The model file records the tokenizer."
        ),
    )
    p.add_argument("corpus", help="UTF-8 text file")
    p.add_argument(
        "--tokenizer", required=True, metavar="SPEC", help="name, tokenizer file, or bpe:N"
    )
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="model file (.npz)")
    _add_training_options(p, _TRAIN_STEPS)
    p.set_defaults(func=_report_errors("train-model", train_model_command))

    p = subparsers.add_parser(
        "eval-model",
        help="score a trained model on a text file: loss, perplexity, bits per byte",
        description="Score MODEL on FILE with the tokenizer the model file records.",
    )
    p.add_argument("model", help="a model file from train-model")
    p.add_argument("file", help="UTF-8 text file to score")
    p.add_argument("--tokenizer", metavar="SPEC", help="override (for files without one)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (%(default)s)")
    p.set_defaults(func=_report_errors("eval-model", eval_model_command))

    p = subparsers.add_parser(
        "compare-vocabs",
        help="train the same small model on each tokenization; compare bits per byte",
        description=(
            "Train the same model (same steps, batch, window and shape; only the embedding and "
            "head follow the vocabulary) on each --tokenizer's tokens of CORPUS and print held-"
            "out bits per byte, with unigram and bigram baselines of the same tokens."
        ),
    )
    p.add_argument("corpus", help="UTF-8 text file")
    p.add_argument(
        "--tokenizer", action="append", required=True, metavar="SPEC", help="repeat: 2 or more"
    )
    p.add_argument("--plot", metavar="PATH", help="draw bits per byte per vocabulary (PNG/SVG)")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    _add_training_options(p, _COMPARE_STEPS)
    p.set_defaults(func=_report_errors("compare-vocabs", compare_vocabs_command))


def _prompt_line(held_out: str) -> str:
    """The first held-out line with at least 8 words, cut to its first 8 words."""
    for line in held_out.splitlines():
        words = line.split()
        if len(words) >= 8 and not line.startswith("#"):
            return " ".join(words[:8])
    return held_out.strip().split("\n")[0][:40]


def train_model_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Handler of ``train-model``."""
    out = out or sys.stdout
    text = read_text(args.corpus)
    train_text, held = split_corpus(text, args.val_fraction)
    tok = get_tokenizer(args.tokenizer, train_text)
    train_ids, val_ids = encode(tok, train_text), encode(tok, held)
    if train_ids.size <= args.seq_len:
        raise TokforgeError(
            f"{args.corpus}: {train_ids.size} training tokens; --seq-len {args.seq_len} needs more"
        )
    config = _config(args, tok)
    bar = None if args.quiet else ProgressBar("train", sys.stderr)
    model, history = fit(
        config, train_ids, args.steps, args.batch_size, args.seq_len, args.lr, args.seed,
        val_ids, threads=args.threads, callback=bar, tokenizer=tok,
    )  # fmt: skip
    n_bytes = scored_bytes(tok, held, val_ids)
    result = evaluate(model, val_ids, n_bytes, threads=args.threads)
    uni = unigram_baseline(train_ids, val_ids, n_bytes, config.vocab_size)
    bi, _ = bigram_baseline(train_ids, val_ids, n_bytes, config.vocab_size)
    info = {
        "tokenizer": args.tokenizer,
        "corpus": os.path.basename(args.corpus),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "lr": args.lr,
        "seed": args.seed,
        "seconds": round(history.seconds, 1),
        "held_out": result.to_dict(),
        "unigram_bits_per_byte": uni.bits_per_byte,
        "bigram_bits_per_byte": bi.bits_per_byte,
    }
    save_trained(args.output, model.params, config, tok.to_json_bytes(), info)
    emb, rest = _count_params(model)
    gain = 1 - result.bits_per_byte / uni.bits_per_byte
    print(
        f"tokenizer {args.tokenizer}: {tok.n_vocab} ids; {train_ids.size} training tokens, "
        f"{val_ids.size} held out ({n_bytes / max(1, val_ids.size - 1):.2f} bytes/token)",
        file=out,
    )
    print(
        f"model: {rest} parameters + {emb} in the embedding; {args.steps} steps in "
        f"{history.seconds:.0f} s",
        file=out,
    )
    print("held-out bits per byte:", file=out)
    print(f"  unigram  {uni.bits_per_byte:.3f}", file=out)
    print(f"  bigram   {bi.bits_per_byte:.3f}", file=out)
    print(
        f"  model    {result.bits_per_byte:.3f}  ({gain:.0%} below unigram; loss "
        f"{result.loss:.3f} nats/token, perplexity {result.perplexity:.1f})",
        file=out,
    )
    prompt = _prompt_line(held)
    generation = model.generate(prompt, max_new_tokens=40, temperature=0)
    print(f"greedy continuation of a held-out line:\n  {prompt!r} -> {generation.text!r}", file=out)
    print(f"wrote {args.output}", file=out)
    return 0


# ---------------------------------------------------------------------------------------------
# eval-model


def eval_model_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Handler of ``eval-model``."""
    out = out or sys.stdout
    model = load_trained_model(args.model, args.tokenizer)
    text = read_text(args.file)
    tok = model.tokenizer
    if not isinstance(tok, Tokenizer):
        raise TokforgeError("the model has no tokenizer")
    ids = encode(tok, text)
    if ids.size < 2:
        raise TokforgeError(f"{args.file}: {ids.size} tokens; at least 2 are needed to score")
    result = evaluate(model, ids, scored_bytes(tok, text, ids), threads=args.threads)
    if args.json:
        print(json.dumps(result.to_dict()), file=out)
    else:
        print(
            f"{args.file}: {result.n_tokens} tokens scored, {result.n_bytes} bytes\n"
            f"  loss           {result.loss:.4f} nats/token\n"
            f"  perplexity     {result.perplexity:.2f}\n"
            f"  bits per byte  {result.bits_per_byte:.4f}",
            file=out,
        )
    return 0


# ---------------------------------------------------------------------------------------------
# compare-vocabs


@dataclass(frozen=True)
class CompareRow:
    """One tokenizer's result in ``compare-vocabs``."""

    tokenizer: str
    n_vocab: int
    bytes_per_token: float
    params_embedding: int
    params_other: int
    unigram_bpb: float
    bigram_bpb: float
    model_bpb: float
    model_loss: float
    seconds: float


def compare_vocabs_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Handler of ``compare-vocabs``."""
    out = out or sys.stdout
    if len(args.tokenizer) < 2:
        raise TokforgeError("give two or more --tokenizer options to compare")
    if args.plot is not None:
        _matplotlib()  # fail before training if the picture cannot be drawn
    text = read_text(args.corpus)
    train_text, held = split_corpus(text, args.val_fraction)
    rows: list[CompareRow] = []
    for spec in args.tokenizer:
        started = time.perf_counter()
        tok = get_tokenizer(spec, train_text)
        train_ids, val_ids = encode(tok, train_text), encode(tok, held)
        if train_ids.size <= args.seq_len:
            raise TokforgeError(f"{spec}: {train_ids.size} training tokens; too few for --seq-len")
        config = _config(args, tok)
        bar = None if args.quiet else ProgressBar(f"{spec:>10}", sys.stderr)
        model, _ = fit(
            config, train_ids, args.steps, args.batch_size, args.seq_len, args.lr, args.seed,
            threads=args.threads, callback=bar,
        )  # fmt: skip
        n_bytes = scored_bytes(tok, held, val_ids)
        result = evaluate(model, val_ids, n_bytes, threads=args.threads)
        uni = unigram_baseline(train_ids, val_ids, n_bytes, config.vocab_size)
        bi, _ = bigram_baseline(train_ids, val_ids, n_bytes, config.vocab_size)
        emb, rest = _count_params(model)
        rows.append(
            CompareRow(
                spec, tok.n_vocab, n_bytes / max(1, val_ids.size - 1), emb, rest,
                uni.bits_per_byte, bi.bits_per_byte, result.bits_per_byte, result.loss,
                time.perf_counter() - started,
            )
        )  # fmt: skip
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1), file=out)
    else:
        print(format_table(rows, args), file=out)
    if args.plot is not None:
        draw_plot(rows, args.plot)
        print(f"plot: {args.plot}", file=out)
    return 0


def format_table(rows: Sequence[CompareRow], args: argparse.Namespace | None = None) -> str:
    """The table ``compare-vocabs`` prints: held-out bits per byte per tokenizer."""
    lines = []
    if args is not None:
        lines.append(
            f"same model for each: d_model {args.d_model}, {args.n_layers} layers, "
            f"{args.n_heads} heads, {args.steps} steps x {args.batch_size} x {args.seq_len} "
            f"tokens, seed {args.seed}; held out: last {args.val_fraction:.0%}"
        )
    lines.append(
        f"{'tokenizer':<14}{'vocab':>7}{'bytes/tok':>10}{'emb params':>11}{'unigram':>9}"
        f"{'bigram':>8}{'model':>8}{'time':>7}"
    )
    best = min(rows, key=lambda r: r.model_bpb)
    for r in rows:
        mark = "  <- best" if r is best else ""
        lines.append(
            f"{r.tokenizer:<14}{r.n_vocab:>7}{r.bytes_per_token:>10.2f}{r.params_embedding:>11}"
            f"{r.unigram_bpb:>9.3f}{r.bigram_bpb:>8.3f}{r.model_bpb:>8.3f}{r.seconds:>6.0f}s{mark}"
        )
    lines.append("(held-out bits per byte; lower is better)")
    return "\n".join(lines)


def _matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TokforgeError("--plot needs matplotlib (pip install matplotlib)") from None
    return plt


def draw_plot(rows: Sequence[CompareRow], path: str | os.PathLike[str]) -> None:
    """Bits per byte against vocabulary size (log scale) for model and baselines, written
    atomically (a temporary file in the same folder renamed over ``path``)."""
    plt = _matplotlib()
    target = os.fspath(path)
    fmt = os.path.splitext(target)[1].lstrip(".").lower() or "png"
    order = sorted(rows, key=lambda r: r.n_vocab)
    x = [r.n_vocab for r in order]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, [r.unigram_bpb for r in order], "o:", label="unigram")
    ax.plot(x, [r.bigram_bpb for r in order], "s--", label="bigram")
    ax.plot(x, [r.model_bpb for r in order], "D-", label="transformer")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("vocabulary size")
    ax.set_ylabel("held-out bits per byte")
    ax.set_title("Which vocabulary serves this corpus best")
    ax.legend()
    fig.tight_layout()
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        write_atomic(target, buf.getvalue())
    finally:
        plt.close(fig)
