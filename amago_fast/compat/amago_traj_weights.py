"""Copy amago_fast's Transformer trajectory encoder into AMAGO's `TformerTrajEncoder`.

The two blocks compute the same function (pre-norm, NormFormer norms and head scaling,
bias-free sigma-reparam qkv, leaky ReLU, final LayerNorm); only tensor layouts differ:

    amago_fast (TransformerTrajEncoder)    AMAGO (TformerTrajEncoder.tformer)
    inp                                    inp
    pos.table ("learned", max_time rows)   position_embedding.embeddings ("learnable")
    blocks[i].norm_attn_in                 layers[i].norm1
    blocks[i].qkv, rows (3, H, Dh)         layers[i].attention_layer.qkv_projection,
                                           rows (3, Dh, H): permuted, u with them
    blocks[i].head_scale (H, 1)            layers[i].attention_layer.head_scaler (1, 1, H, 1)
    blocks[i].attn_out                     layers[i].attention_layer.out_projection
    blocks[i].norm_attn_out                layers[i].norm2
    blocks[i].norm_ff_in                   layers[i].norm3
    blocks[i].ff1, norm_ff_mid, ff2        layers[i].ff1, norm4, ff2
    norm_out                               norm

Sigma-reparam layers carry weight, bias, gamma and the power-iteration buffers u, v.

Position embeddings: "learned" <-> "learnable" and "rotary" <-> "rope" (both half-split
RoPE with base 10000) map as above. "fixed" <-> "fixed" uses the same frequencies, but
AMAGO interleaves sin/cos (channel 2i = sin_i, 2i+1 = cos_i) where amago_fast
concatenates [sin, cos]. Every block is equivariant under a permutation of the residual
channels (LayerNorm statistics do not see channel order; sigma(W) is invariant under row
or column permutation, and u, v permute with them), so the mapping permutes every
d_model axis and AMAGO's output is amago_fast's with its channels reordered:
``theirs_out == ours_out[..., perm]``, perm being the value returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

_POS_EMB = {"learned": "learnable", "rotary": "rope", "fixed": "fixed"}


@dataclass
class _Pair:
    """theirs == ours[rows][:, cols] after reshaping to ours' shape (None: no permutation)."""

    name: str
    ours: torch.Tensor
    theirs: torch.Tensor
    rows: Optional[torch.Tensor] = None
    cols: Optional[torch.Tensor] = None

    def to_theirs(self, t: torch.Tensor) -> torch.Tensor:
        if self.rows is not None:
            t = t[self.rows]
        if self.cols is not None:
            t = t[:, self.cols]
        return t.reshape(self.theirs.shape)

    def to_ours(self, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(self.ours.shape)
        if self.cols is not None:
            t = t[:, torch.argsort(self.cols)]
        if self.rows is not None:
            t = t[torch.argsort(self.rows)]
        return t


def residual_perm(d_model: int, pos_emb: str) -> torch.Tensor:
    """AMAGO residual channel j holds amago_fast's channel perm[j] (identity unless "fixed")."""
    if pos_emb != "fixed":
        return torch.arange(d_model)
    half = d_model // 2
    return torch.stack([torch.arange(half), half + torch.arange(half)], 1).reshape(-1)  # sin_i, cos_i


def qkv_perm(n_heads: int, d_head: int) -> torch.Tensor:
    """AMAGO qkv row (three, d, h) holds amago_fast's row (three, h, d)."""
    return torch.arange(3 * n_heads * d_head).view(3, n_heads, d_head).transpose(1, 2).reshape(-1)


def _linear(name: str, ours: nn.Module, theirs: nn.Module, rows, cols) -> list[_Pair]:
    sigma_ours, sigma_theirs = hasattr(ours, "gamma"), hasattr(theirs, "gamma")
    if sigma_ours != sigma_theirs:
        raise ValueError(f"{name}: sigma_reparam is {sigma_ours} in amago_fast but {sigma_theirs} in AMAGO")
    if (ours.bias is None) != (theirs.bias is None):
        raise ValueError(f"{name}: bias {ours.bias is not None} in amago_fast, {theirs.bias is not None} in AMAGO")
    pairs = [_Pair(f"{name}.weight", ours.weight, theirs.weight, rows, cols)]
    if ours.bias is not None:
        pairs.append(_Pair(f"{name}.bias", ours.bias, theirs.bias, rows))
    if sigma_ours:
        pairs += [
            _Pair(f"{name}.gamma", ours.gamma, theirs.gamma),
            _Pair(f"{name}.u", ours.u, theirs.u, rows),
            _Pair(f"{name}.v", ours.v, theirs.v, cols),
        ]
    return pairs


def _norm(name: str, ours: nn.LayerNorm, theirs: Any, perm) -> list[_Pair]:
    ln = getattr(theirs, "norm", None)
    if not isinstance(ln, nn.LayerNorm):
        raise ValueError(f"{name}: AMAGO's norm is {ln!r}; amago_fast maps only norm='layer' with normformer_norms")
    return [_Pair(f"{name}.weight", ours.weight, ln.weight, perm), _Pair(f"{name}.bias", ours.bias, ln.bias, perm)]


def _check(ours: Any, tf: Any) -> str:
    pos = "rotary" if ours.pos is None else ours.pos.kind
    theirs_pos = "rope" if tf.use_rope else type(tf.position_embedding).__name__
    want = {"rotary": "rope", "learned": "LearnablePosEmb", "fixed": "FixedPosEmb"}[pos]
    if theirs_pos != want:
        raise ValueError(f"pos_emb {pos!r} in amago_fast maps to AMAGO {_POS_EMB[pos]!r}, got {theirs_pos}")
    if pos == "learned":
        n_ours, n_theirs = ours.pos.table.num_embeddings, tf.position_embedding.embeddings.num_embeddings
        if n_ours != n_theirs:
            raise ValueError(f"learned table: amago_fast max_time={n_ours}, AMAGO max_time_idx={n_theirs}")
    if (ours.d_model, ours.n_layers) != (tf.d_model, tf.n_layers):
        raise ValueError(
            f"(d_model, n_layers): amago_fast {(ours.d_model, ours.n_layers)}, AMAGO {(tf.d_model, tf.n_layers)}"
        )
    for i, layer in enumerate(tf.layers):
        att = layer.attention_layer
        if att.n_heads != ours.n_heads or not att.self_attention.causal:
            raise ValueError(
                f"layer {i}: AMAGO has {att.n_heads} heads (causal={att.self_attention.causal}), "
                f"amago_fast {ours.n_heads} causal"
            )
        if layer.activation is not F.leaky_relu:
            raise ValueError(f"layer {i}: AMAGO activation {layer.activation!r}, amago_fast uses leaky_relu")
    return pos


def _pairs(ours: Any, theirs: Any) -> tuple[list[_Pair], torch.Tensor]:
    tf = getattr(theirs, "tformer", theirs)  # a TformerTrajEncoder or its Transformer
    pos = _check(ours, tf)
    p = residual_perm(ours.d_model, pos)
    q = qkv_perm(ours.n_heads, ours.d_model // ours.n_heads)
    pairs = _linear("inp", ours.inp, tf.inp, p, None)
    if pos == "learned":
        pairs.append(_Pair("pos.table", ours.pos.table.weight, tf.position_embedding.embeddings.weight, None, p))
    for i, (blk, layer) in enumerate(zip(ours.blocks, tf.layers)):
        att, n = layer.attention_layer, f"blocks[{i}]"
        pairs += _norm(f"{n}.norm_attn_in", blk.norm_attn_in, layer.norm1, p)
        pairs += _linear(f"{n}.qkv", blk.qkv, att.qkv_projection, q, p)
        if blk.head_scale is not None:
            pairs.append(_Pair(f"{n}.head_scale", blk.head_scale, att.head_scaler))
        elif att.head_scaler.requires_grad:
            raise ValueError(f"{n}: head_scaling is off in amago_fast but on in AMAGO")
        pairs += _linear(f"{n}.attn_out", blk.attn_out, att.out_projection, p, None)
        pairs += _norm(f"{n}.norm_attn_out", blk.norm_attn_out, layer.norm2, p)
        pairs += _norm(f"{n}.norm_ff_in", blk.norm_ff_in, layer.norm3, p)
        pairs += _linear(f"{n}.ff1", blk.ff1, layer.ff1, None, p)
        pairs += _norm(f"{n}.norm_ff_mid", blk.norm_ff_mid, layer.norm4, None)
        pairs += _linear(f"{n}.ff2", blk.ff2, layer.ff2, p, None)
    pairs += _norm("norm_out", ours.norm_out, tf.norm, p)
    return pairs, p


@torch.no_grad()
def copy_traj_encoder_to_amago(ours: Any, theirs: Any) -> torch.Tensor:
    """Write `ours` (a `TransformerTrajEncoder`) into `theirs` (AMAGO's `TformerTrajEncoder`).

    Copies every parameter and the sigma-reparam buffers u, v. Returns perm (d_model,),
    AMAGO's output channel order: ``theirs(x) == ours(x)[..., perm]`` (identity unless
    pos_emb is "fixed"). Raises ValueError when the two configurations do not correspond.
    """
    pairs, perm = _pairs(ours, theirs)
    for pair in pairs:
        if pair.ours.numel() != pair.theirs.numel():
            raise ValueError(f"{pair.name}: amago_fast {tuple(pair.ours.shape)} vs AMAGO {tuple(pair.theirs.shape)}")
        pair.theirs.copy_(pair.to_theirs(pair.ours))
    for layer in getattr(theirs, "tformer", theirs).layers:  # a frozen head_scaler must read 1
        if not layer.attention_layer.head_scaler.requires_grad:
            layer.attention_layer.head_scaler.fill_(1.0)
    return perm


def amago_traj_tensors(ours: Any, theirs: Any, grad: bool = False) -> list[tuple[str, Any, Any]]:
    """(name, amago_fast tensor, AMAGO tensor in amago_fast's layout) for every mapped tensor,
    for parity tests. grad=True: the parameters' .grad instead (None where absent), no buffers."""
    out = []
    for pair in _pairs(ours, theirs)[0]:
        if not grad:
            out.append((pair.name, pair.ours, pair.to_ours(pair.theirs)))
        elif isinstance(pair.ours, nn.Parameter):  # u, v are buffers: no gradient
            g = pair.theirs.grad
            out.append((pair.name, pair.ours.grad, None if g is None else pair.to_ours(g)))
    return out
