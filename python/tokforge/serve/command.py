"""``tokforge serve``: the command line of the playground.

:func:`register` adds the ``serve`` sub-command to an ``argparse`` sub-parsers object and points
``func`` at :func:`run`, which returns the exit code. :func:`main` parses its own arguments, for
``python -m tokforge.serve``.

    tokforge serve                          # cl100k_base and o200k_base, a free port
    tokforge serve -t my_tokenizer.json -t cl100k --port 8421 --open
    tokforge serve --weights model.npz      # trained weights for the transformer view
"""

from __future__ import annotations

import argparse
import sys
import threading
import webbrowser
from collections.abc import Sequence
from typing import Any, TextIO

from ..errors import TokforgeError
from .api import MAX_TEXT_BYTES, Playground
from .server import make_server

__all__ = ["main", "register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to an ``argparse`` sub-parsers object (from ``add_subparsers()``)."""
    p = subparsers.add_parser(
        "serve",
        help="a local playground page: splits side by side, vocabulary, attention",
        description=(
            "Serve a playground page on 127.0.0.1 (this machine only): type a text and watch "
            "each tokenizer split it, browse a vocabulary and the lineage of its tokens, see "
            "the classic tokenization surprises, and run the prompt through the NumPy "
            "transformer. Nothing is fetched from the network. Texts up to "
            f"{MAX_TEXT_BYTES // 1_000_000} MB."
        ),
    )
    p.add_argument(
        "--tokenizer",
        "-t",
        dest="tokenizers",
        action="append",
        default=[],
        metavar="NAME|FILE",
        help="an encoding name (cl100k, o200k) or a tokenizer file (tokforge JSON, .tiktoken, "
        "tokenizer.json, SentencePiece .model, GPT-2 vocab.json); repeat for several; these are "
        "selected when the page opens (default: the built-in encodings found locally)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="N",
        help="the port on 127.0.0.1 (default: 0, a free one; the URL is printed)",
    )
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="weights for the transformer view: a .npz saved by tokforge.nn (or a GPT-2 "
        ".safetensors), used with the tokenizers whose vocabulary size matches; default: "
        "random weights, labelled as such",
    )
    p.set_defaults(func=run)
    parser: argparse.ArgumentParser = p
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Start the server, print its URL, and serve until interrupted (Ctrl-C); 0 on a clean
    stop. Bad arguments raise :class:`~tokforge.errors.TokforgeError`, which the main command
    line prints as one line."""
    stream = out if out is not None else sys.stdout
    playground = Playground(args.tokenizers, weights=args.weights)
    try:
        server = make_server(playground, port=args.port)
        print(
            f"tokforge serve: {server.url}  (127.0.0.1 only; Ctrl-C stops)",
            file=stream,
            flush=True,
        )
        if args.open:
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("tokforge serve: stopped", file=stream)
        finally:
            server.server_close()
    finally:
        playground.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tokforge.serve [options]``: the ``serve`` command on its own."""
    parser = argparse.ArgumentParser(prog="tokforge")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except TokforgeError as e:
        print(f"tokforge serve: error: {e}", file=sys.stderr)
        return 1
