"""Attention: ``scaled_dot_product_attention`` (defined in ``minigrad.nn.functional``, which the
dropout it uses lives in, and re-exported here) and ``MultiheadAttention`` (Vaswani et al.
2017, "Attention Is All You Need"):

    head_h = softmax(Q_h K_h^T / sqrt(d) + B) V_h,   Q_h = query W_q,h^T + b_q,h  (K, V alike)
    out = concat(m_1 head_1, ..., m_H head_H) W_o^T + b_o

with d = head_dim, B the masks as an additive bias (-inf where a key is masked), and m the
optional ``head_mask`` (ones when not given). Since L is linear in each m_h, dL/dm_h is the
head importance of Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"), which
head pruning uses.

Parameters as in PyTorch, so a PyTorch ``state_dict`` loads: ``in_proj_weight`` holds W_q, W_k
and W_v stacked (rows for q, then k, then v; head h is rows h*d:(h+1)*d of each block),
``in_proj_bias`` the three biases, ``out_proj`` is a Linear. Shapes follow ``num_heads`` and
``head_dim`` (not ``embed_dim``), so a model with pruned heads keeps working.
"""

import numpy as np

from minigrad.backend import array_module
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.functional import scaled_dot_product_attention
from minigrad.nn.layers import Linear
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor, as_tensor


class AttentionBase(Module):
    """What every multi-head attention shares: the masks, the split into heads, the attention
    and the output projection. A subclass sets ``embed_dim``, ``num_heads``, ``head_dim``,
    ``dropout``, ``batch_first`` and ``out_proj``, and says how the inputs become Q, K and V
    (``_project``): with float weights in ``MultiheadAttention``, with quantized ones (int8,
    int4) in ``minigrad.quant.attention``."""

    def _project(self, query, key, value):
        """Q, K and V, each (N, L or S, num_heads * head_dim), from (N, L or S, E) inputs."""
        raise NotImplementedError(f"{type(self).__name__} does not define _project")

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False, head_mask=None):
        if query.ndim not in (2, 3) or query.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiheadAttention: expected query with embed_dim "
                             f"{self.embed_dim} as its last dim, 2 or 3 dims in all, got "
                             f"shape {tuple(query.shape)}")
        unbatched = query.ndim == 2
        query, key, value = (_batch_first(x, self.batch_first, unbatched)
                             for x in (query, key, value))
        self._check_key_and_value(query, key, value)
        batch, target, source = query.shape[0], query.shape[1], key.shape[1]
        if unbatched and key_padding_mask is not None:
            key_padding_mask = as_tensor(key_padding_mask).unsqueeze(0)
        if is_causal and attn_mask is None:
            xp = array_module(query.data)
            attn_mask = Tensor(xp.triu(xp.ones((target, source), dtype=bool), 1))
        bias = self._bias(key_padding_mask, attn_mask, batch, target, source, query.dtype)
        q, k, v = (self._heads(x) for x in self._project(query, key, value))
        heads, weights = F._attention(q, k, v, bias, self.dropout if self.training else 0.0,
                                      scale=None)
        if head_mask is not None:
            heads = heads * self._head_scale(head_mask)
        out = _as_given(self.out_proj(heads.swapaxes(1, 2).reshape(batch, target, -1)),
                        self.batch_first, unbatched)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(axis=1)
        return out, weights.squeeze(0) if unbatched else weights

    def _check_key_and_value(self, query, key, value):
        """ValueError naming the shapes unless key and value are (N, S, E) for an (N, L, E)
        query (batch first here)."""
        if key.shape != value.shape or key.shape[0] != query.shape[0] or key.shape[2] != (
                self.embed_dim):
            raise ValueError(f"MultiheadAttention: key {tuple(key.shape)} and value "
                             f"{tuple(value.shape)} must have the same shape, with the "
                             f"query's batch and embed_dim {self.embed_dim} (query "
                             f"{tuple(query.shape)}, batch first)")

    def _heads(self, x):
        """(N, L, num_heads * head_dim) -> (N, num_heads, L, head_dim)."""
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).swapaxes(1, 2)

    def _head_scale(self, head_mask):
        """``head_mask`` (num_heads,) shaped to scale (N, num_heads, L, head_dim) heads."""
        if tuple(head_mask.shape) != (self.num_heads,):
            raise ValueError(f"MultiheadAttention: head_mask must have shape "
                             f"({self.num_heads},) (num_heads), got {tuple(head_mask.shape)}")
        return head_mask.reshape(1, self.num_heads, 1, 1)

    def _bias(self, key_padding_mask, attn_mask, batch, target, source, dtype):
        """The masks as one additive bias that broadcasts to (N, num_heads, L, S), or None."""
        bias = None
        if key_padding_mask is not None:
            _check_mask_shape("key_padding_mask", key_padding_mask, [(batch, source)])
            bias = F._attention_bias(key_padding_mask, dtype, masked_where=True).reshape(
                batch, 1, 1, source)
        if attn_mask is not None:
            _check_mask_shape("attn_mask", attn_mask, [
                (target, source), (batch * self.num_heads, target, source)])
            mask = F._attention_bias(attn_mask, dtype, masked_where=True)
            mask = mask.reshape(-1, self.num_heads, target, source) if mask.ndim == 3 else mask
            bias = mask if bias is None else bias + mask
        return bias

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


class MultiheadAttention(AttentionBase):
    """Multi-head attention over (L, N, E) inputs, or (N, L, E) with ``batch_first``, or
    unbatched (L, E), as ``torch.nn.MultiheadAttention`` (kdim = vdim = embed_dim only).

    ``forward`` returns (attn_output, attn_weights): the output has the query's shape; the
    weights, (N, L, S) averaged over heads or (N, num_heads, L, S) without
    ``average_attn_weights`` (no N when unbatched), are None unless ``need_weights``.
    ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N * num_heads, L, S) exclude
    keys where a bool mask is True, or are added to the scores when float. ``is_causal``
    masks the keys after each query when no ``attn_mask`` is given (PyTorch takes it as a
    hint that ``attn_mask`` is causal, and refuses it without one). ``head_mask``
    (num_heads,) scales each head's output before ``out_proj``."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False,
                 kdim=None, vdim=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, "
                             f"got embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by "
                             f"num_heads {num_heads}")
        if kdim not in (None, embed_dim) or vdim not in (None, embed_dim):
            raise NotImplementedError(f"MultiheadAttention: kdim={kdim} and vdim={vdim} other "
                                      f"than embed_dim={embed_dim} are not supported")
        self.embed_dim, self.kdim, self.vdim = embed_dim, embed_dim, embed_dim
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=np.float32))
        self.register_parameter(
            "in_proj_bias", Parameter(np.empty(3 * embed_dim, dtype=np.float32)) if bias else None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's initialization: xavier_uniform_ for in_proj_weight, zero biases
        (out_proj.weight keeps Linear's default)."""
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(self, query, key, value):
        return [F.linear(x, w, b) for x, w, b in zip((query, key, value),
                                                     *self._in_projections())]

    def _in_projections(self):
        """(W_q, W_k, W_v) and (b_q, b_k, b_v): the three blocks of in_proj_weight's rows."""
        inner = self.num_heads * self.head_dim
        blocks = [slice(i * inner, (i + 1) * inner) for i in range(3)]
        biases = [None] * 3 if self.in_proj_bias is None else [self.in_proj_bias[b]
                                                               for b in blocks]
        return [self.in_proj_weight[b] for b in blocks], biases


def _batch_first(x, batch_first, unbatched):
    """An (N, L, E) view of an input given as (L, N, E), (N, L, E) or unbatched (L, E)."""
    if unbatched:
        return x.unsqueeze(0)
    return x if batch_first else x.swapaxes(0, 1)


def _as_given(out, batch_first, unbatched):
    """An (N, L, E) output in the layout the inputs came in (``_batch_first`` undone)."""
    if unbatched:
        return out.squeeze(0)
    return out if batch_first else out.swapaxes(0, 1)


def _check_mask_shape(name, mask, allowed):
    """ValueError naming the mask, the shapes it may have and the shape it has."""
    if tuple(mask.shape) not in allowed:
        expected = " or ".join(str(shape) for shape in allowed)
        raise ValueError(f"MultiheadAttention: {name} should have shape {expected}, got "
                         f"{tuple(mask.shape)}")


__all__ = ["AttentionBase", "MultiheadAttention", "scaled_dot_product_attention"]
