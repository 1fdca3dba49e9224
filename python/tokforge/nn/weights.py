"""Weights: their shapes, a seeded random init, ``.npz`` files, and GPT-2 ``.safetensors``.

Shapes of ``params`` (GPT-2 names; ``kv_dim = n_kv_heads * head_dim``)::

    wte                   [vocab_size, d_model]          token embeddings (and tied output head)
    wpe                   [max_seq_len, d_model]         learned positions only
    h[i].ln_1.g / .b      [d_model]                      LayerNorm gain / bias
    h[i].attn.c_attn.w    [d_model, d_model + 2*kv_dim]  Q | K | V projection; .b: [d_model+2*kv]
    h[i].attn.c_proj.w    [d_model, d_model]             W_O; .b: [d_model]
    h[i].ln_2.g / .b      [d_model]
    h[i].mlp.c_fc.w       [d_model, d_ff]                .b: [d_ff]
    h[i].mlp.c_proj.w     [d_ff, d_model]                .b: [d_model]
    ln_f.g / .b           [d_model]                      pre-LN only
    lm_head.w             [vocab_size, d_model]          untied head only (wte's layout)

Linear weights are ``[d_in, d_out]`` (GPT-2's ``Conv1D``), so a GPT-2 checkpoint loads without a
transpose. A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw little-endian bytes; it is read and written
here with NumPy alone.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import TokforgeError
from ..files import check_input, write_atomic
from .config import Config, Params

__all__ = [
    "check_params",
    "flatten_params",
    "from_gpt2_names",
    "init_params",
    "load_gpt2",
    "load_npz",
    "param_shapes",
    "read_safetensors",
    "safetensors_metadata",
    "save_gpt2",
    "save_npz",
    "to_gpt2_names",
    "unflatten_params",
    "write_safetensors",
]

# ---------------------------------------------------------------------------------------------
# Shapes and init


def param_shapes(config: Config) -> Params:
    """The nested dict of every parameter's shape for ``config`` (tuples in place of arrays)."""
    d, vocab, d_ff = config.d_model, config.vocab_size, config.d_ff or 4 * config.d_model
    qkv = d + 2 * config.kv_dim

    def norm() -> dict[str, tuple[int, ...]]:
        return {"g": (d,), "b": (d,)}

    shapes: Params = {"wte": (vocab, d)}
    if config.positional == "learned":
        shapes["wpe"] = (config.max_seq_len, d)
    shapes["h"] = [
        {
            "ln_1": norm(),
            "attn": {"c_attn": {"w": (d, qkv), "b": (qkv,)}, "c_proj": {"w": (d, d), "b": (d,)}},
            "ln_2": norm(),
            "mlp": {"c_fc": {"w": (d, d_ff), "b": (d_ff,)}, "c_proj": {"w": (d_ff, d), "b": (d,)}},
        }
        for _ in range(config.n_layers)
    ]
    if config.norm == "pre":
        shapes["ln_f"] = norm()
    if not config.tie_embeddings:
        shapes["lm_head"] = {"w": (vocab, d)}
    return shapes


def init_params(config: Config, seed: int = 0, dtype: Any = np.float64) -> Params:
    """Random weights drawn as GPT-2 draws them, reproducible from ``seed``.

    Matrices are normal with std 0.02; the two projections that write into the residual stream
    (``attn.c_proj``, ``mlp.c_proj``) get ``0.02 / sqrt(2 * n_layers)`` so that the stream's
    variance does not grow with depth; ``wpe`` gets 0.01; LayerNorm gains are 1, biases 0.
    Tensors are drawn in the order of :func:`flatten_params`, so a given seed always gives the
    same weights.
    """
    rng = np.random.default_rng(seed)
    resid_std = 0.02 / math.sqrt(2 * config.n_layers)
    flat: dict[str, np.ndarray] = {}
    for name, shape in flatten_params(param_shapes(config)).items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "g":
            flat[name] = np.ones(shape, dtype=dtype)
        elif leaf == "b":
            flat[name] = np.zeros(shape, dtype=dtype)
        else:
            std = 0.01 if name == "wpe" else resid_std if name.endswith("c_proj.w") else 0.02
            flat[name] = (rng.standard_normal(shape) * std).astype(dtype)
    return unflatten_params(flat)


def check_params(params: Params, config: Config) -> None:
    """Raise ``ValueError`` naming the first few tensors that are missing, extra or misshapen."""
    expected = flatten_params(param_shapes(config))
    try:
        got = {k: tuple(np.shape(v)) for k, v in flatten_params(params).items()}
    except (TypeError, AttributeError) as e:
        raise TokforgeError(f"params is not a nested dict of arrays: {e}") from None
    problems = [f"missing {k} {s}" for k, s in expected.items() if k not in got]
    problems += [f"unexpected {k}" for k in got if k not in expected]
    problems += [
        f"{k}: expected {s}, got {got[k]}" for k, s in expected.items() if k in got and got[k] != s
    ]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise TokforgeError("params do not match the config: " + "; ".join(problems[:5]) + more)


def flatten_params(params: Mapping[str, Any] | list[Any], prefix: str = "") -> dict[str, Any]:
    """``{"h": [{"ln_1": {"g": a}}]}`` -> ``{"h.0.ln_1.g": a}``: dotted names, in a fixed order.

    >>> flatten_params({"wte": 1, "h": [{"ln_1": {"g": 2, "b": 3}}]})
    {'wte': 1, 'h.0.ln_1.g': 2, 'h.0.ln_1.b': 3}
    """
    flat: dict[str, Any] = {}
    items = params.items() if isinstance(params, Mapping) else enumerate(params)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (Mapping, list)):
            flat.update(flatten_params(value, name + "."))
        else:
            flat[name] = value
    return flat


def unflatten_params(flat: Mapping[str, Any]) -> Params:
    """Inverse of :func:`flatten_params`; numeric parts become list positions.

    >>> unflatten_params({"wte": 1, "h.0.ln_1.g": 2, "h.1.ln_1.g": 3})
    {'wte': 1, 'h': [{'ln_1': {'g': 2}}, {'ln_1': {'g': 3}}]}
    """
    tree: dict[str, Any] = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    params: Params = _lists_from_int_keys(tree)
    return params


def _lists_from_int_keys(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_int_keys(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        indices = sorted(int(k) for k in converted)
        if indices != list(range(len(indices))):
            raise TokforgeError(f"layer numbers are not 0..n-1: {indices}")
        return [converted[str(i)] for i in indices]
    return converted


# ---------------------------------------------------------------------------------------------
# .npz


def save_npz(path: str | os.PathLike[str], params: Params, config: Config) -> None:
    """Write the flattened params and the config (as JSON under ``__config__``) to ``path``.

    NumPy appends ``.npz`` to a name without it.
    """
    flat = {k: np.asarray(v) for k, v in flatten_params(params).items()}
    buf = io.BytesIO()
    # numpy's stub types **kwds against its own allow_pickle: bool keyword, so a dict of arrays
    # unpacked there is refused although every key is a tensor name
    np.savez(buf, __config__=np.array(json.dumps(config.to_dict())), **flat)  # type: ignore[arg-type]
    target = os.fspath(path)
    if isinstance(target, str) and not target.endswith(".npz"):
        target += ".npz"  # as np.savez does with a file name
    write_atomic(target, buf.getvalue())


def _open_npz(path: str | os.PathLike[str]) -> Any:
    """``np.load`` of a regular file, its failures as tokforge errors naming the file."""
    name = os.fspath(path)
    check_input(name)
    try:
        data = np.load(name, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise TokforgeError(f"{name}: not a .npz model file ({e})") from None
    if not hasattr(data, "files"):
        raise TokforgeError(f"{name}: a single .npy array, not a .npz model file")
    return data


def _json(raw: str | bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise TokforgeError(f"{what}: JSON nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokforgeError(f"{what}: not JSON: {e}") from None


def load_npz(path: str | os.PathLike[str]) -> tuple[Params, Config]:
    """Read a file written by :func:`save_npz` (no pickles are loaded)."""
    with _open_npz(path) as data:
        if "__config__" not in data.files:
            raise TokforgeError(f"{os.fspath(path)}: not a tokforge.nn model (no __config__ entry)")
        config = Config.from_dict(_json(str(data["__config__"]), f"{os.fspath(path)}: config"))
        # Names starting with "__" are metadata (see tokforge.nn.checkpoint), never weights.
        params = unflatten_params({k: data[k] for k in data.files if not k.startswith("__")})
    check_params(params, config)
    return params, config


# ---------------------------------------------------------------------------------------------
# safetensors

# safetensors dtype code <-> NumPy dtype (little-endian). BF16 has no NumPy dtype: it is read as
# the high 16 bits of a float32.
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}  # fmt: skip
_DTYPE_CODES = {np.dtype(v): k for k, v in _SAFETENSORS_DTYPES.items()}
# The reference implementation refuses headers above 100 MB; so do we, before reading one.
_MAX_HEADER = 100_000_000


def _read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file and the offset where its data starts."""
    name = os.fspath(path)
    check_input(name)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise TokforgeError(f"{name}: too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER:
            raise TokforgeError(f"{name}: safetensors header of {n} bytes is implausibly large")
        raw = f.read(n)
    if len(raw) < n:
        raise TokforgeError(f"{name}: safetensors header truncated ({len(raw)} of {n} bytes)")
    header = _json(raw, f"{name}: safetensors header")
    if not isinstance(header, dict):
        raise TokforgeError(f"{name}: safetensors header is not a JSON object")
    return header, 8 + n


def safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The free-form ``__metadata__`` strings of a safetensors file (empty if none)."""
    header, _ = _read_header(path)
    return dict(header.get("__metadata__") or {})


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file, as NumPy arrays (BF16 becomes float32).

    The data is memory-mapped and each tensor copied out, so a large checkpoint is not held in
    memory twice.
    """
    name = os.fspath(path)
    header, start = _read_header(path)
    size = os.path.getsize(path) - start
    # asarray drops the memmap subclass (so copies are plain arrays) but keeps the mapping.
    data = (
        np.asarray(np.memmap(path, dtype=np.uint8, mode="r", offset=start))  # [size] raw bytes
        if size > 0
        else np.zeros(0, dtype=np.uint8)
    )
    tensors: dict[str, np.ndarray] = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            code, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise TokforgeError(f"{name}: bad header entry for {key!r}: {info!r}") from None
        if code != "BF16" and code not in _SAFETENSORS_DTYPES:
            raise TokforgeError(f"{name}: tensor {key!r} has unsupported dtype {code}")
        itemsize = 2 if code == "BF16" else np.dtype(_SAFETENSORS_DTYPES[code]).itemsize
        if not 0 <= begin <= end <= size or end - begin != math.prod(shape) * itemsize:
            raise TokforgeError(f"{name}: tensor {key!r} has bad data_offsets [{begin}, {end}]")
        raw = data[begin:end]  # [end - begin] bytes
        if code == "BF16":
            high = raw.view("<u2").astype(np.uint32) << 16  # bf16 is a float32 without low bits
            tensors[key] = high.view(np.float32).reshape(shape)
        else:
            tensors[key] = raw.view(_SAFETENSORS_DTYPES[code]).reshape(shape).copy()
    del data  # release the map
    return tensors


def write_safetensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``tensors`` (sorted by name, packed back to back) as a safetensors file.

    The header is padded with spaces to a multiple of 8 bytes so the data starts aligned.
    """
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    arrays: list[np.ndarray] = []
    offset = 0
    for key in sorted(tensors):
        a = np.asarray(tensors[key])
        little = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        a = np.asarray(a, dtype=little, order="C")  # (ascontiguousarray would make 0-d 1-d)
        if a.dtype not in _DTYPE_CODES:
            raise TokforgeError(f"tensor {key!r}: dtype {a.dtype} has no safetensors code")
        header[key] = {
            "dtype": _DTYPE_CODES[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
        arrays.append(a)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    out = io.BytesIO()
    out.write(struct.pack("<Q", len(blob)))
    out.write(blob)
    for a in arrays:
        out.write(a.tobytes())
    write_atomic(path, out.getvalue())


# ---------------------------------------------------------------------------------------------
# GPT-2 checkpoints

_CONFIG_KEY = "tokforge.config"
# GPT-2's head width in every released size (small 768/12, medium 1024/16, large 1280/20,
# xl 1600/25): the head count to assume when neither metadata nor config.json says.
_GPT2_HEAD_DIM = 64
_HF_ACTIVATIONS = {
    "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
    "gelu": "gelu",
}  # fmt: skip


def to_gpt2_names(params: Params) -> dict[str, np.ndarray]:
    """Params under the names of transformers' ``GPT2Model`` state dict.

    ``wte`` -> ``wte.weight``, ``h.0.ln_1.g`` -> ``h.0.ln_1.weight``,
    ``h.0.attn.c_attn.w`` -> ``h.0.attn.c_attn.weight``, ``*.b`` -> ``*.bias``.
    """
    out: dict[str, np.ndarray] = {}
    for name, value in flatten_params(params).items():
        if "." not in name:
            out[f"{name}.weight"] = value
            continue
        stem, leaf = name.rsplit(".", 1)
        out[f"{stem}.{'bias' if leaf == 'b' else 'weight'}"] = value
    return out


def from_gpt2_names(tensors: Mapping[str, np.ndarray]) -> Params:
    """Inverse of :func:`to_gpt2_names`, accepting transformers' variations.

    A ``transformer.`` prefix (``GPT2LMHeadModel``) is dropped, and so are the attention-mask
    buffers some exports keep (``h.N.attn.bias``, ``h.N.attn.masked_bias``). An ``lm_head``
    equal to ``wte`` is dropped too: the head is tied.
    """
    flat: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        name = name.removeprefix("transformer.")
        parts = name.split(".")
        if len(parts) == 4 and parts[2] == "attn" and parts[3] in ("bias", "masked_bias"):
            continue  # a causal-mask buffer, not a weight
        if name in ("wte.weight", "wpe.weight"):  # bare tables, not layers
            flat[parts[0]] = value
            continue
        stem, leaf = ".".join(parts[:-1]), parts[-1]
        if leaf == "bias":
            flat[f"{stem}.b"] = value
        elif leaf == "weight":
            flat[f"{stem}.{'g' if parts[-2].startswith('ln_') else 'w'}"] = value
        else:
            raise TokforgeError(f"unexpected tensor name in a GPT-2 checkpoint: {name!r}")
    if "lm_head.w" in flat and "wte" in flat and np.array_equal(flat["lm_head.w"], flat["wte"]):
        del flat["lm_head.w"]
    return unflatten_params(flat)


def save_gpt2(path: str | os.PathLike[str], params: Params, config: Config) -> None:
    """Write a GPT-2-layout safetensors file; the config rides along in ``__metadata__``."""
    metadata = {"format": "np", _CONFIG_KEY: json.dumps(config.to_dict())}
    write_safetensors(path, to_gpt2_names(params), metadata)


def load_gpt2(path: str | os.PathLike[str], dtype: Any = np.float64) -> tuple[Params, Config]:
    """Load a GPT-2-layout safetensors file (``wte``, ``wpe``, ``h.N.ln_1``, ``attn.c_attn``,
    ``mlp.c_fc``, ...), from local disk only.

    The config comes from, in order: the file's own ``tokforge.config`` metadata; a
    transformers ``config.json`` beside the file (``n_head``, ``layer_norm_epsilon``,
    ``activation_function``, ``eos_token_id``); the tensor shapes (layers, widths, vocabulary,
    context, K/V heads), with GPT-2's head width of 64 and tanh GELU filling the gaps.
    Weights are cast to ``dtype`` (float64 by default, for exact comparisons).
    """
    named = from_gpt2_names(read_safetensors(path))  # drops mask buffers before any cast
    params = unflatten_params({k: v.astype(dtype) for k, v in flatten_params(named).items()})
    stored = safetensors_metadata(path).get(_CONFIG_KEY)
    if stored is not None:
        config = Config.from_dict(json.loads(stored))
    else:
        config = _infer_gpt2_config(params, _read_hf_config(path))
    check_params(params, config)
    return params, config


def _read_hf_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    beside = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    if not os.path.exists(beside):
        return {}
    with open(beside, encoding="utf-8") as f:
        hf = json.load(f)
    return hf if isinstance(hf, dict) else {}


def _infer_gpt2_config(params: Params, hf: Mapping[str, Any]) -> Config:
    if "wte" not in params or "h" not in params:
        raise TokforgeError("not a GPT-2 checkpoint: wte or h.0.* tensors are missing")
    vocab, d_model = params["wte"].shape
    n_heads = int(hf.get("n_head", d_model // _GPT2_HEAD_DIM or 1))
    qkv_width = params["h"][0]["attn"]["c_attn"]["w"].shape[1]
    n_kv_heads = (qkv_width - d_model) // 2 // (d_model // n_heads)
    activation = _HF_ACTIVATIONS.get(str(hf.get("activation_function", "gelu_new")))
    if activation is None:
        raise TokforgeError(f"unsupported activation_function {hf['activation_function']!r}")
    eos = hf.get("eos_token_id")
    return Config(
        vocab_size=vocab,
        d_model=d_model,
        n_layers=len(params["h"]),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        d_ff=params["h"][0]["mlp"]["c_fc"]["w"].shape[1],
        max_seq_len=params["wpe"].shape[0] if "wpe" in params else int(hf.get("n_positions", 1024)),
        positional="learned" if "wpe" in params else "none",
        norm="pre" if "ln_f" in params else "post",
        activation=activation,
        tie_embeddings="lm_head" not in params,
        layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
        eos_id=int(eos) if isinstance(eos, int) and 0 <= eos < vocab else None,
    )
