"""Every op of minigrad: ``Function`` classes (forward and backward on arrays) and the public
functions that apply them to Tensors, one module a family:

    unary.py        neg exp log sqrt abs sign clip, casts (dtype, device)
    rounding.py     floor ceil round trunc frac (zero gradient)
    binary.py       add sub mul div pow maximum minimum where, comparisons eq ne lt le gt ge
    reduce.py       sum mean var max min logsumexp, argmax argmin (no gradient)
    shape.py        reshape permute transpose broadcast_to expand getitem cat pad,
                    composites flatten squeeze unsqueeze stack split
    indexing.py     gather scatter index_select masked ops, sort topk
    linalg.py       matmul
    activation.py   relu leaky_relu sigmoid tanh gelu softplus softmax log_softmax
    nn.py           Conv2d MaxPool2d AvgPool2d (kernels from ``backend.kernels``), fused
                    Linear and SoftmaxCrossEntropy; no functions here: ``nn.functional``
                    applies them (conv2d, max_pool2d, avg_pool2d, linear, cross_entropy)
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
