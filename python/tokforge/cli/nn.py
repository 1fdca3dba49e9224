"""``tokforge run-model``: run the NumPy reference transformer on a prompt from the shell.

The main command line (``tokforge.cli``) calls :func:`register` with its sub-parsers object;
this module adds the ``run-model`` sub-command and points ``func`` at its handler, which returns
the exit code: 0 on success, 1 with a one-line message on any error it can explain.

    tokforge run-model "The cat sat" --trace
    tokforge run-model "The cat sat" --trace --attention-png attention.png
    tokforge run-model "Hello" --weights gpt2/model.safetensors --tokenizer gpt2 --temperature 0

Without ``--weights`` the model is random (seeded by ``--seed``) and small, so it runs in well
under a second even with cl100k's 100k-token vocabulary; its output is noise, but every step of
the road from text to next token is real and can be watched with ``--trace``.
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import sys
from typing import Any, TextIO

from ..encodings import resolve_tokenizer
from ..nn.checkpoint import load_trained
from ..nn.config import ACTIVATIONS, NORMS, POSITIONALS, Config
from ..nn.model import Transformer
from ..nn.sampling import make_rng, sample_token
from ..nn.trace import draw_attention, format_trace, matplotlib_figure, record
from ..tokenizer import Tokenizer
from .options import Subparsers, add_tokenizer, fail

__all__ = ["register"]

# Shape options for a random model; with --weights the file decides, so these stay None there.
_SHAPE_OPTIONS = (
    "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "max_seq_len", "positional", "norm",
    "activation",
)  # fmt: skip
_RANDOM_DEFAULTS = {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 256}


def register(subparsers: Subparsers) -> None:
    """Add ``run-model`` to an ``argparse`` sub-parsers object (from ``add_subparsers()``)."""
    p = subparsers.add_parser(
        "run-model",
        help="run the NumPy reference transformer on a prompt (random or GPT-2 weights)",
        description=(
            "Tokenize PROMPT, run it through a small NumPy transformer and sample the next "
            "tokens. Without --weights the model is random but every step is real; --trace "
            "prints the road from text to next token with shapes and values."
        ),
    )
    p.add_argument("prompt", help="the text to continue")
    add_tokenizer(
        p,
        metavar="NAME|FILE",
        default=None,
        help="tokenizer name or file (default: the one a train-model .npz records, else cl100k)",
    )
    p.add_argument(
        "--weights",
        metavar="PATH",
        help="a .npz saved by tokforge.nn, or a GPT-2-layout .safetensors file (config.json "
        "beside it is read if present); default: random weights",
    )
    shape = p.add_argument_group("random model shape (not with --weights, which brings its own)")
    shape.add_argument(
        "--d-model", dest="d_model", metavar="N", type=int, help="residual width (default 64)"
    )
    shape.add_argument(
        "--layers", dest="n_layers", metavar="N", type=int, help="blocks (default 2)"
    )
    shape.add_argument(
        "--heads", dest="n_heads", metavar="N", type=int, help="query heads (default 4)"
    )
    shape.add_argument(
        "--kv-heads",
        dest="n_kv_heads",
        metavar="N",
        type=int,
        help="K/V heads: fewer than --heads is GQA",
    )
    shape.add_argument(
        "--d-ff", dest="d_ff", metavar="N", type=int, help="MLP width (default 4 * d_model)"
    )
    shape.add_argument(
        "--max-seq-len", dest="max_seq_len", metavar="N", type=int, help="context (default 256)"
    )
    shape.add_argument("--positional", choices=POSITIONALS, help="default learned")
    shape.add_argument("--norm", choices=NORMS, help="pre-LN or post-LN (default pre)")
    shape.add_argument(
        "--activation", choices=ACTIVATIONS, help="default gelu_tanh (GPT-2's); gelu is exact"
    )
    shape.add_argument("--untied", action="store_true", help="separate output head")
    shape.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    gen = p.add_argument_group("sampling")
    gen.add_argument(
        "--max-new-tokens",
        metavar="N",
        type=int,
        help="tokens to generate (default 20; 1 with --trace or --attention-png)",
    )
    gen.add_argument(
        "--temperature", metavar="T", type=float, default=1.0, help="0 is greedy (default 1.0)"
    )
    gen.add_argument("--top-k", metavar="K", type=int, help="keep the k likeliest tokens")
    gen.add_argument(
        "--top-p", metavar="P", type=float, help="keep the smallest set with mass >= p"
    )
    gen.add_argument(
        "--sample-seed", metavar="SEED", type=int, help="seed for sampling (default: fresh)"
    )
    show = p.add_argument_group("inspection")
    show.add_argument(
        "--trace", action="store_true", help="print every step of the first prediction"
    )
    show.add_argument(
        "--attention-png",
        metavar="PATH",
        help="draw each head's attention weights as heatmaps (needs matplotlib)",
    )
    p.set_defaults(func=_handler)


def _handler(args: argparse.Namespace) -> int:
    try:
        return _run(args, sys.stdout)
    except (ValueError, OSError, KeyError, ImportError) as e:
        return fail(e.args[0] if isinstance(e, KeyError) and e.args else e, "run-model")


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.attention_png is not None:
        matplotlib_figure()  # fail before any work if the picture cannot be drawn
    _check_shape_options(args)  # before reading --weights: a usage error comes first
    tokenizer = _tokenizer_for(args)
    model = _build_model(args, tokenizer)
    ids = model.encode_prompt(args.prompt)
    inspecting = args.trace or args.attention_png is not None
    n_new = args.max_new_tokens if args.max_new_tokens is not None else 1 if inspecting else 20
    if n_new < 0:
        raise ValueError(f"--max-new-tokens must be >= 0, got {n_new}")
    sampling = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
    rng = make_rng(args.sample_seed)

    if not inspecting:
        _print_stream(model, out, args.prompt, model.stream(ids, n_new, **sampling, seed=rng))
        return 0

    rec = record(model, ids)
    first = sample_token(rec.logits[-1], rng, **sampling) if n_new > 0 else None
    weights = f"file {args.weights}" if args.weights else f"random (seed {args.seed})"
    if args.trace:
        print(f"weights: {weights}, tokenizer: {_name(tokenizer)}", file=out)
        print(format_trace(model, rec, **sampling, sampled=first), file=out)
    if args.attention_png is not None:
        draw_attention(model, rec, args.attention_png)
        print(f"attention heatmaps: {args.attention_png}", file=out)
    if first is None:
        return 0
    rest: list[int] = []
    if n_new > 1 and first != model.config.eos_id and len(ids) < model.config.max_seq_len:
        rest = list(model.stream([*ids, first], n_new - 1, **sampling, seed=rng))
    print("", file=out)
    _print_stream(model, out, args.prompt, iter([first, *rest]))
    return 0


def _print_stream(model: Transformer, out: TextIO, prompt: str, tokens: Any) -> None:
    """Print the prompt, then each token's text as soon as it forms whole UTF-8 characters."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out.write(prompt)
    for token in tokens:
        out.write(decoder.decode(model.token_bytes(token)))
        out.flush()
    out.write(decoder.decode(b"", final=True) + "\n")


def _tokenizer_for(args: argparse.Namespace) -> Tokenizer:
    """``--tokenizer`` if given; else the tokenizer a ``train-model`` file records; else cl100k."""
    if args.tokenizer is not None:
        return resolve_tokenizer(args.tokenizer)
    if args.weights is not None and str(args.weights).endswith(".npz"):
        recorded = load_trained(args.weights).tokenizer_json
        if recorded is not None:
            return Tokenizer.from_json_bytes(recorded)
    return resolve_tokenizer("cl100k")


def _name(tokenizer: object) -> str:
    """A tokenizer's name; any object with encode/decode may stand in, with or without one."""
    return str(getattr(tokenizer, "name", "") or type(tokenizer).__name__)


def _check_shape_options(args: argparse.Namespace) -> None:
    given = [name for name in _SHAPE_OPTIONS if getattr(args, name) is not None]
    if args.weights is not None and (given or args.untied):
        flags = ", ".join("--" + name.replace("_", "-") for name in given) or "--untied"
        raise ValueError(f"{flags}: the model shape comes from --weights; drop these options")


def _build_model(args: argparse.Namespace, tokenizer: Tokenizer) -> Transformer:
    given = {
        name: getattr(args, name) for name in _SHAPE_OPTIONS if getattr(args, name) is not None
    }
    if args.weights is None:
        shape = {**_RANDOM_DEFAULTS, **given, "tie_embeddings": not args.untied}
        return Transformer(
            Config.from_tokenizer(tokenizer, **shape), args.seed, tokenizer=tokenizer
        )

    path = str(args.weights)
    if path.endswith(".npz"):
        model = Transformer.load(path, tokenizer=tokenizer)
    elif path.endswith(".safetensors"):
        model = Transformer.from_gpt2(path, tokenizer=tokenizer)
    else:
        raise ValueError(f"--weights {path}: expected a .npz or .safetensors file")
    if tokenizer.n_vocab > model.config.vocab_size:
        raise ValueError(
            f"the weights know {model.config.vocab_size} tokens but tokenizer "
            f"{_name(tokenizer)!r} has {tokenizer.n_vocab}: pass the tokenizer the weights were "
            "trained with (--tokenizer)"
        )
    if model.config.eos_id is None:
        eos = _eot(tokenizer)
        if eos is not None and eos < model.config.vocab_size:
            config = dataclasses.replace(model.config, eos_id=eos)
            model = Transformer(config, params=model.params, tokenizer=tokenizer)
    return model


def _eot(tokenizer: Tokenizer) -> int | None:
    try:
        return tokenizer.eot_token
    except KeyError:
        return None
