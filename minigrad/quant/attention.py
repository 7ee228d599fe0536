"""Quantized multi-head attention: every projection of a ``MultiheadAttention`` becomes a
quantized Linear layer, int8 dynamic (``quantize_dynamic``) or int4 weight-only
(``quantize_weight_only``). For int8,

    Q = s_x s_q (sum W_q,int8 (x_q - z_x)) + b_q      (K, V and the output projection alike)

with W_q, W_k, W_v the three row blocks of ``in_proj_weight``, each int8 per output channel,
and x quantized to uint8 per batch at run time. The attention itself (Q K^T, softmax, times V)
stays in float32, as in PyTorch's dynamically quantized transformers, whose int8 work is the
Linear layers. (PyTorch's ``quantize_dynamic`` leaves ``nn.MultiheadAttention`` float: its
in-projection is a bare Parameter and ``out_proj`` a ``NonDynamicallyQuantizableLinear``;
minigrad converts both, so every Linear of an encoder is quantized.)

Per-channel and per-group scales make the split exact: quantizing the three blocks apart gives
the same codes and scales as quantizing ``in_proj_weight`` whole.
"""

from minigrad.nn.attention import AttentionBase, MultiheadAttention


class QuantizedMultiheadAttention(AttentionBase):
    """``MultiheadAttention`` (the same arguments to ``forward``, the same outputs up to
    rounding) whose ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` are quantized Linear
    layers (DynamicQuantizedLinear or WeightOnlyInt4Linear). Inference only."""

    def __init__(self, q_proj, k_proj, v_proj, out_proj, num_heads, dropout=0.0,
                 batch_first=False):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = q_proj, k_proj, v_proj, out_proj
        self.embed_dim = self.kdim = self.vdim = q_proj.in_features
        self.num_heads, self.head_dim = num_heads, q_proj.out_features // num_heads
        self.dropout, self.batch_first = dropout, batch_first

    @classmethod
    def from_float(cls, attention, quantized_linear):
        """From a float ``MultiheadAttention`` (pruned heads too): ``quantized_linear(weight,
        bias)``, given float arrays (bias may be None), makes each projection."""
        weights, biases = attention._in_projections()
        out = attention.out_proj
        q, k, v, out = (quantized_linear(w.numpy(), None if b is None else b.numpy())
                        for w, b in [*zip(weights, biases), (out.weight, out.bias)])
        return cls(q, k, v, out, attention.num_heads, attention.dropout,
                   attention.batch_first).train(attention.training)

    def _project(self, query, key, value):
        return [self.q_proj(query), self.k_proj(key), self.v_proj(value)]


def quantization_sites(model, layers):
    """(name, module) of every module of type ``layers`` and every MultiheadAttention, in
    ``named_modules`` order, leaving out what is inside an attention (its ``out_proj``)."""
    attentions = [name for name, m in model.named_modules() if isinstance(m, MultiheadAttention)]

    def inside_attention(name):
        return any(name.startswith(a + ".") if a else bool(name) for a in attentions)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (layers, MultiheadAttention)) and not inside_attention(name)]


def projection_inputs(module):
    """The input widths of the Linear maps ``quantized_site`` makes of ``module``: a Linear's
    in_features, or an attention's embed_dim (q, k, v) and num_heads * head_dim (out)."""
    if isinstance(module, MultiheadAttention):
        return [module.embed_dim, module.out_proj.in_features]
    return [module.in_features]


def quantized_site(module, quantized_linear):
    """``module`` (a Linear, or a MultiheadAttention: its four projections) with every Linear
    map made by ``quantized_linear(weight, bias)`` from float arrays (bias may be None), in
    eval mode."""
    if isinstance(module, MultiheadAttention):
        return QuantizedMultiheadAttention.from_float(module, quantized_linear).eval()
    bias = None if module.bias is None else module.bias.numpy()
    return quantized_linear(module.weight.numpy(), bias).eval()


def replaced(model, name, new):
    """``model`` with its submodule ``name`` replaced by ``new`` (``new`` itself for "")."""
    if not name:
        return new
    model.set_submodule(name, new)
    return model


__all__ = ["QuantizedMultiheadAttention", "projection_inputs", "quantization_sites",
           "quantized_site", "replaced"]
