"""int8 dynamic quantization of multi-head attention: every projection of a
``MultiheadAttention`` becomes a ``DynamicQuantizedLinear``,

    Q = s_x s_q (sum W_q,int8 (x_q - z_x)) + b_q      (K, V and the output projection alike)

with W_q, W_k, W_v the three row blocks of ``in_proj_weight``, each int8 per output channel,
and x quantized to uint8 per batch at run time. The attention itself (Q K^T, softmax, times V)
stays in float32, as in PyTorch's dynamically quantized transformers, whose int8 work is the
Linear layers. (PyTorch's ``quantize_dynamic`` leaves ``nn.MultiheadAttention`` float: its
in-projection is a bare Parameter and ``out_proj`` a ``NonDynamicallyQuantizableLinear``;
``minigrad.quant.quantize_dynamic`` converts both, so every Linear of an encoder is int8.)

Per-channel scales make the split exact: quantizing the three blocks apart gives the same
codes and scales as quantizing ``in_proj_weight`` whole.
"""

from minigrad.nn.attention import AttentionBase
from minigrad.quant.quantized import DynamicQuantizedLinear


class DynamicQuantizedMultiheadAttention(AttentionBase):
    """``MultiheadAttention`` (the same arguments to ``forward``, the same outputs up to int8
    rounding) with ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` DynamicQuantizedLinear
    layers. Inference only: no gradients flow through int8 weights."""

    def __init__(self, q_proj, k_proj, v_proj, out_proj, num_heads, dropout=0.0,
                 batch_first=False):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = q_proj, k_proj, v_proj, out_proj
        self.embed_dim = self.kdim = self.vdim = q_proj.in_features
        self.num_heads, self.head_dim = num_heads, q_proj.out_features // num_heads
        self.dropout, self.batch_first = dropout, batch_first

    @classmethod
    def from_float(cls, attention, weight_qparams):
        """From a float ``MultiheadAttention`` (pruned heads too); ``weight_qparams(array)``
        gives each weight's QParams (per channel, symmetric int8 in ``quantize_dynamic``)."""
        weights, biases = attention._in_projections()
        q, k, v = (DynamicQuantizedLinear.from_arrays(
            w.numpy(), None if b is None else b.numpy(), weight_qparams(w.numpy()))
            for w, b in zip(weights, biases))
        out = DynamicQuantizedLinear.from_float(attention.out_proj,
                                                weight_qparams(attention.out_proj.weight.numpy()))
        return cls(q, k, v, out, attention.num_heads, attention.dropout,
                   attention.batch_first).train(attention.training)

    def _project(self, query, key, value):
        return [self.q_proj(query), self.k_proj(key), self.v_proj(value)]


__all__ = ["DynamicQuantizedMultiheadAttention"]
