"""Every op of minigrad: ``Function`` classes (forward and backward on arrays) and the public
functions that apply them to Tensors, one module a family (docs/autograd.md has the map):

    unary.py        neg exp log sqrt abs sign clip, trigonometric and hyperbolic functions,
                    rsqrt reciprocal square log2 log10 log1p expm1 exp2 erf, clone, casts
    rounding.py     floor ceil round trunc (zero gradient) frac
    binary.py       add sub mul div pow fmod remainder atan2 hypot copysign xlogy lerp
                    maximum minimum where; logical and bitwise ops; comparisons, isclose;
                    PyTorch's type promotion
    reduce.py       sum mean var std prod max min amax amin logsumexp norm median mode,
                    cumulative sums, products and extrema; any all count_nonzero argmax argmin
    shape.py        reshape permute transpose expand getitem cat stack split chunk pad flip
                    roll tril triu diag diagonal trace repeat tile unfold movedim meshgrid ...
    indexing.py     gather scatter index_select index_add take masked_fill masked_select
                    nonzero sort argsort topk kthvalue one_hot searchsorted bucketize
    linalg.py       matmul mm bmm mv dot outer inner tensordot einsum
    activation.py   relu leaky_relu sigmoid tanh gelu softplus softmax log_softmax silu mish
                    hardtanh relu6 hardsigmoid hardswish elu selu celu softsign logsigmoid ...
    nn.py           Conv2d ConvTranspose2d MaxPool2d AvgPool2d (kernels from
                    ``backend.kernels_for``), unpooling, fused Linear and SoftmaxCrossEntropy;
                    no functions here: ``nn.functional`` applies them
    normalization.py  LayerNormFunction, RMSNormFunction: normalization over the last dims
                    with a closed-form backward; no functions here either
    dims.py         the two spellings of a dimension argument (``dim``/``axis``), and its checks

Each family module lists its public functions in ``__all__``; this package exports them all.
"""

from minigrad.ops import activation, binary, indexing, linalg, reduce, rounding, shape, unary
from minigrad.ops.activation import *  # noqa: F401,F403
from minigrad.ops.binary import *  # noqa: F401,F403
from minigrad.ops.indexing import *  # noqa: F401,F403
from minigrad.ops.linalg import *  # noqa: F401,F403
from minigrad.ops.reduce import *  # noqa: F401,F403
from minigrad.ops.rounding import *  # noqa: F401,F403
from minigrad.ops.shape import *  # noqa: F401,F403
from minigrad.ops.unary import *  # noqa: F401,F403

FAMILIES = (activation, binary, indexing, linalg, reduce, rounding, shape, unary)
__all__ = sorted({name for family in FAMILIES for name in family.__all__})
