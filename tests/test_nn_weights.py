"""tokforge.nn weights: seeded init, .npz round trip, the safetensors format, GPT-2 checkpoints.

Needs only NumPy; the comparisons with the ``safetensors`` package run where it is installed.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module
from tokforge.nn import Config, Transformer, weights
from tokforge.nn.weights import read_safetensors, write_safetensors


def noisy(model: Transformer, seed: int = 0) -> Transformer:
    """Perturb every tensor (gains and biases too) so no zero or one hides a mix-up."""
    rng = np.random.default_rng(seed)
    flat = weights.flatten_params(model.params)
    flat = {k: v + 0.05 * rng.standard_normal(v.shape) for k, v in flat.items()}
    return Transformer(model.config, params=weights.unflatten_params(flat))


CONFIG = Config(vocab_size=53, d_model=16, n_layers=2, n_heads=4, max_seq_len=32)


# ---------------------------------------------------------------------------------------------
# init and checks


def test_init_is_seeded_and_gpt2_scaled() -> None:
    a, b, c = (weights.init_params(CONFIG, seed) for seed in (0, 0, 1))
    flat_a, flat_b, flat_c = map(weights.flatten_params, (a, b, c))
    assert all(np.array_equal(flat_a[k], flat_b[k]) for k in flat_a)
    assert not np.array_equal(flat_a["wte"], flat_c["wte"])
    big = weights.init_params(Config(vocab_size=4000, d_model=64, n_layers=8), 0)
    assert np.std(big["wte"]) == pytest.approx(0.02, rel=0.02)
    assert np.std(big["h"][0]["attn"]["c_proj"]["w"]) == pytest.approx(0.005, rel=0.05)
    assert np.all(big["h"][3]["ln_1"]["g"] == 1) and np.all(big["h"][3]["ln_1"]["b"] == 0)


def test_param_shapes_follow_the_config() -> None:
    gqa = Config(vocab_size=10, d_model=16, n_heads=4, n_kv_heads=2, d_ff=40, tie_embeddings=False)
    shapes = weights.flatten_params(weights.param_shapes(gqa))
    assert shapes["h.0.attn.c_attn.w"] == (16, 16 + 2 * 8)
    assert shapes["h.1.mlp.c_fc.w"] == (16, 40)
    assert shapes["lm_head.w"] == (10, 16)
    assert "wpe" in shapes and "ln_f.g" in shapes
    post_rope = Config(vocab_size=10, d_model=16, positional="rope", norm="post")
    shapes = weights.flatten_params(weights.param_shapes(post_rope))
    assert "wpe" not in shapes and "ln_f.g" not in shapes and "lm_head.w" not in shapes


def test_mismatched_params_are_rejected_with_names() -> None:
    params = weights.init_params(CONFIG)
    params["h"][1]["mlp"]["c_fc"]["w"] = np.zeros((16, 7))
    with pytest.raises(ValueError, match=r"h\.1\.mlp\.c_fc\.w: expected \(16, 64\), got \(16, 7\)"):
        Transformer(CONFIG, params=params)
    del params["wpe"]
    with pytest.raises(ValueError, match="missing wpe"):
        Transformer(CONFIG, params=params)


def test_flatten_and_unflatten_are_inverse() -> None:
    params = weights.init_params(CONFIG)
    flat = weights.flatten_params(params)
    assert list(flat)[:3] == ["wte", "wpe", "h.0.ln_1.g"]
    again = weights.flatten_params(weights.unflatten_params(flat))
    assert list(again) == list(flat)


# ---------------------------------------------------------------------------------------------
# .npz


@pytest.mark.parametrize(
    "config",
    [CONFIG, Config(vocab_size=30, d_model=8, n_heads=2, n_kv_heads=1, positional="rope",
                    norm="post", tie_embeddings=False, eos_id=3)],
)  # fmt: skip
def test_npz_round_trip(tmp_path: Path, config: Config) -> None:
    model = noisy(Transformer(config, seed=4))
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = Transformer.load(path)
    assert loaded.config == model.config
    ids = [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(loaded.forward(ids), model.forward(ids))
    with np.load(path, allow_pickle=False) as data:  # a plain, pickle-free archive
        assert "h.1.attn.c_attn.w" in data.files


def test_npz_without_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, wte=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"not a tokforge\.nn model"):
        Transformer.load(path)


# ---------------------------------------------------------------------------------------------
# safetensors, our own reader and writer


def test_safetensors_round_trip_many_dtypes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "f64": rng.standard_normal((3, 4)),
        "f32": rng.standard_normal((5,)).astype(np.float32),
        "f16": rng.standard_normal((2, 2, 2)).astype(np.float16),
        "i64": np.arange(-3, 3, dtype=np.int64).reshape(2, 3),
        "u8": np.arange(7, dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "big_endian": np.arange(4, dtype=">i4"),
    }
    path = tmp_path / "t.safetensors"
    write_safetensors(path, tensors, metadata={"who": "test"})
    back = read_safetensors(path)
    assert set(back) == set(tensors)
    for name, value in tensors.items():
        assert back[name].shape == value.shape
        assert back[name].dtype == value.dtype.newbyteorder("=")
        np.testing.assert_array_equal(back[name], value)
    assert weights.safetensors_metadata(path) == {"who": "test"}


def test_safetensors_layout_is_the_documented_one(tmp_path: Path) -> None:
    """8-byte little-endian header length, JSON header, then raw little-endian bytes."""
    path = tmp_path / "t.safetensors"
    write_safetensors(
        path, {"b": np.array([1.0, 2.0], dtype=np.float32), "a": np.array([7], "<i2")}
    )
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0  # padded so the data is aligned
    header = json.loads(raw[8 : 8 + n])
    assert header["a"] == {"dtype": "I16", "shape": [1], "data_offsets": [0, 2]}
    assert header["b"] == {"dtype": "F32", "shape": [2], "data_offsets": [2, 10]}
    data = raw[8 + n :]
    assert data == struct.pack("<h", 7) + struct.pack("<2f", 1.0, 2.0)


def test_safetensors_reads_bf16_by_hand(tmp_path: Path) -> None:
    # bfloat16 is float32's upper half: 1.0 = 0x3F80, -2.0 = 0xC000, 0.5 = 0x3F00.
    body = struct.pack("<3H", 0x3F80, 0xC000, 0x3F00)
    header = json.dumps({"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)
    x = read_safetensors(path)["x"]
    assert x.dtype == np.float32
    assert x.tolist() == [1.0, -2.0, 0.5]


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 50) + b"{}", "truncated"),
        (struct.pack("<Q", 4) + b"nope", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 1 << 40), "implausibly large"),
    ],
)
def test_safetensors_bad_headers(tmp_path: Path, blob: bytes, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=message):
        read_safetensors(path)


def test_safetensors_bad_offsets(tmp_path: Path) -> None:
    entry = {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}  # 4 floats need 16
    header = json.dumps(entry).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    with pytest.raises(ValueError, match="data_offsets"):
        read_safetensors(path)
    entry = {"x": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}
    header = json.dumps(entry).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(ValueError, match="unsupported dtype C64"):
        read_safetensors(path)


def test_our_writer_and_reader_agree_with_the_safetensors_package(tmp_path: Path) -> None:
    st = require_module("safetensors.numpy")
    rng = np.random.default_rng(1)
    tensors = {
        "wte.weight": rng.standard_normal((11, 4)).astype(np.float32),
        "h.0.attn.c_attn.bias": rng.standard_normal(12),
        "ids": np.arange(5, dtype=np.int64),
        "flags": np.array([True, False]),
        "half": rng.standard_normal((2, 3)).astype(np.float16),
    }
    ours = tmp_path / "ours.safetensors"
    write_safetensors(ours, tensors, metadata={"format": "np"})
    theirs_read = st.load_file(str(ours))
    assert set(theirs_read) == set(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(theirs_read[name], value)

    theirs = tmp_path / "theirs.safetensors"
    st.save_file(tensors, str(theirs), metadata={"format": "np"})
    ours_read = read_safetensors(theirs)
    for name, value in tensors.items():
        assert ours_read[name].dtype == value.dtype
        np.testing.assert_array_equal(ours_read[name], value)
    assert weights.safetensors_metadata(theirs) == {"format": "np"}


# ---------------------------------------------------------------------------------------------
# GPT-2 layout


def test_gpt2_names() -> None:
    names = weights.to_gpt2_names(weights.init_params(CONFIG))
    for name in (
        "wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.weight",
        "h.0.attn.c_attn.bias", "h.0.attn.c_proj.weight", "h.1.ln_2.weight", "h.1.mlp.c_fc.weight",
        "h.1.mlp.c_proj.bias", "ln_f.weight", "ln_f.bias",
    ):  # fmt: skip
        assert name in names
    assert names["h.0.attn.c_attn.weight"].shape == (16, 48)  # Conv1D layout [in, out]
    back = weights.from_gpt2_names(names)
    flat, flat_back = (
        weights.flatten_params(weights.init_params(CONFIG)),
        weights.flatten_params(back),
    )
    assert list(flat) == list(flat_back)


def test_save_and_load_gpt2_safetensors(tmp_path: Path) -> None:
    config = Config(vocab_size=40, d_model=16, n_heads=4, n_kv_heads=2, activation="gelu_tanh")
    model = noisy(Transformer(config, seed=2))
    path = tmp_path / "model.safetensors"
    weights.save_gpt2(path, model.params, model.config)
    loaded = Transformer.from_gpt2(path)
    assert loaded.config == config  # carried in the file's metadata
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    np.testing.assert_array_equal(loaded.forward(ids), model.forward(ids))


def write_hf_gpt2(directory: Path, model: Transformer, n_head: int, **extra: object) -> Path:
    """Write what transformers' GPT2LMHeadModel saves: ``transformer.``-prefixed names, the
    causal-mask buffers, a tied ``lm_head.weight``, float32, and a config.json beside it."""
    tensors = {f"transformer.{k}": v.astype(np.float32) for k, v in
               weights.to_gpt2_names(model.params).items()}  # fmt: skip
    n_ctx = model.config.max_seq_len
    for i in range(model.config.n_layers):
        tensors[f"transformer.h.{i}.attn.bias"] = np.tril(np.ones((1, 1, n_ctx, n_ctx), np.float32))
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"]
    path = directory / "model.safetensors"
    write_safetensors(path, tensors, metadata={"format": "pt"})
    hf_config = {
        "model_type": "gpt2", "n_head": n_head, "n_embd": model.config.d_model,
        "n_layer": model.config.n_layers, "n_positions": n_ctx, "layer_norm_epsilon": 1e-5,
        "activation_function": "gelu_new", "eos_token_id": 50, **extra,
    }  # fmt: skip
    (directory / "config.json").write_text(json.dumps(hf_config))
    return path


def test_load_a_transformers_style_gpt2_checkpoint(tmp_path: Path) -> None:
    config = Config(vocab_size=60, d_model=24, n_heads=2, max_seq_len=16, activation="gelu_tanh")
    model = noisy(Transformer(config, seed=3))
    path = write_hf_gpt2(tmp_path, model, n_head=2)
    loaded = Transformer.from_gpt2(path)
    c = loaded.config
    assert (c.vocab_size, c.d_model, c.n_layers, c.n_heads, c.n_kv_heads) == (60, 24, 2, 2, 2)
    assert (c.max_seq_len, c.activation, c.tie_embeddings, c.eos_id) == (16, "gelu_tanh", True, 50)
    assert loaded.params["wte"].dtype == np.float64
    ids = [0, 59, 7, 7, 30]
    # The checkpoint was rounded to float32, so compare at float32 precision.
    np.testing.assert_allclose(loaded.forward(ids), model.forward(ids), rtol=1e-5, atol=1e-5)


def test_gpt2_checkpoint_without_config_json_assumes_64_wide_heads(tmp_path: Path) -> None:
    config = Config(vocab_size=20, d_model=128, n_layers=1, n_heads=2, max_seq_len=8,
                    activation="gelu_tanh")  # fmt: skip
    model = Transformer(config, seed=0)
    path = write_hf_gpt2(tmp_path, model, n_head=2)
    (tmp_path / "config.json").unlink()
    loaded = Transformer.from_gpt2(path)
    assert loaded.config.n_heads == 2  # 128 / 64
    assert loaded.config.activation == "gelu_tanh"
    assert loaded.config.eos_id is None


def test_gpt2_checkpoint_with_unknown_activation(tmp_path: Path) -> None:
    model = Transformer(Config(vocab_size=20, d_model=16, n_layers=1, n_heads=2), seed=0)
    path = write_hf_gpt2(tmp_path, model, n_head=2, activation_function="swish")
    with pytest.raises(ValueError, match="swish"):
        Transformer.from_gpt2(path)
