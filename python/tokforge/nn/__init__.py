"""``tokforge.nn``: a small, exact NumPy transformer that shows the road from text to next token.

tokenize -> embed -> add positions -> attend -> transform -> project to logits -> sample -> repeat

>>> from tokforge.nn import Config, Transformer
>>> model = Transformer(Config(vocab_size=50, d_model=16, n_layers=2, n_heads=4), seed=0)
>>> model.forward([5, 6, 7]).shape
(3, 50)
>>> len(model.generate([5, 6, 7], max_new_tokens=4, temperature=0))
4

Modules: :mod:`.functional` (softmax, attention, LayerNorm, GELU, positions), :mod:`.model`
(blocks, forward pass, KV cache, generation), :mod:`.sampling` (temperature, top-k, top-p),
:mod:`.weights` (init, ``.npz``, GPT-2 safetensors), :mod:`.trace` (the step-by-step printout
and attention heatmaps behind ``tokforge run-model --trace``). Only NumPy is required.
"""

from . import backward as backward
from .backward import grad as grad
from .backward import loss as loss
from .checkpoint import load_trained as load_trained
from .checkpoint import save_trained as save_trained
from .config import Config as Config
from .config import Params as Params
from .fit import Evaluation as Evaluation
from .fit import History as History
from .fit import bigram_baseline as bigram_baseline
from .fit import evaluate as evaluate
from .fit import fit as fit
from .fit import unigram_baseline as unigram_baseline
from .functional import attention as attention
from .functional import attention_scores as attention_scores
from .functional import causal_mask as causal_mask
from .functional import embed as embed
from .functional import erf as erf
from .functional import ffn as ffn
from .functional import gelu as gelu
from .functional import gelu_tanh as gelu_tanh
from .functional import layer_norm as layer_norm
from .functional import linear as linear
from .functional import merge_heads as merge_heads
from .functional import rope as rope
from .functional import rope_angles as rope_angles
from .functional import sinusoidal_positions as sinusoidal_positions
from .functional import softmax as softmax
from .functional import split_heads as split_heads
from .model import Generation as Generation
from .model import KVCache as KVCache
from .model import Transformer as Transformer
from .model import block as block
from .model import forward as forward
from .model import multi_head_attention as multi_head_attention
from .sampling import greedy as greedy
from .sampling import make_rng as make_rng
from .sampling import sample as sample
from .sampling import sample_token as sample_token
from .sampling import sampling_distribution as sampling_distribution
from .weights import init_params as init_params
from .weights import load_gpt2 as load_gpt2
from .weights import load_npz as load_npz
from .weights import read_safetensors as read_safetensors
from .weights import save_gpt2 as save_gpt2
from .weights import save_npz as save_npz
from .weights import write_safetensors as write_safetensors
