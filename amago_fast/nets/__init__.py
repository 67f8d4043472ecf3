"""Networks: timestep encoders, trajectory encoders (Transformer with KV cache, GRU), heads."""

from .attention import cache_attention, causal_attention
from .gru import GRUState, GRUTrajEncoder
from .heads import ActionDist, ActorHead, CriticEnsemble, PopArt
from .layers import SigmaReparamLinear
from .transformer import KVCache, TransformerTrajEncoder
from .tstep import TstepEncoder

__all__ = [
    "ActionDist",
    "ActorHead",
    "CriticEnsemble",
    "GRUState",
    "GRUTrajEncoder",
    "KVCache",
    "PopArt",
    "SigmaReparamLinear",
    "TransformerTrajEncoder",
    "TstepEncoder",
    "cache_attention",
    "causal_attention",
]
