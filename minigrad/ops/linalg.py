"""Products of tensors: matmul with NumPy's semantics, PyTorch's products of given ranks (dot,
mv, mm, bmm, outer, vdot) and inner, einsum, and tensordot.

For matrices, C = A B with C_ij = sum_k A_ik B_kj, and for a scalar loss L:

    dL/dA = dL/dC · B^T        dL/dB = A^T · dL/dC

A 1-D operand is a vector: on the left it acts as a (1, n) row, on the right as an (n, 1)
column, and that axis is dropped from the result. Operands with more than two axes are stacks
of matrices whose leading (batch) axes broadcast; the engine sums the gradient over broadcast
batch axes. The 2-D products run on the kernel seam (``backend.kernels_for``).

einsum generalizes every product: z = einsum("ij,jk->ik", a, b) sums the products of the
operands' elements over the subscripts missing from the output. Each operand enters z
linearly, so dL/d(operand i) is again an einsum: of dL/dz with the other operands, written
with operand i's subscripts as the output (``EinSum``).

As in PyTorch, the operands of a product must have one dtype: float32 @ float64 is a
TypeError naming both, not a silent promotion.
"""

import string

from minigrad.autograd import Function, tensor_inputs
from minigrad.backend import array_module, kernels_for
from minigrad.ops.binary import mul
from minigrad.ops.dims import normalize_dim
from minigrad.ops.shape import broadcast_to

__all__ = [
    "bmm", "dot", "einsum", "ger", "inner", "matmul", "mm", "mv", "outer", "tensordot", "vdot",
]


def check_same_dtype(op, tensors):
    """A TypeError naming every operand's dtype and shape unless they share one dtype."""
    if len({t.dtype for t in tensors}) > 1:
        listed = " and ".join(f"{t.dtype} of shape {t.shape}" for t in tensors)
        raise TypeError(f"{op}: expected operands of the same dtype, got {listed}; cast one "
                        "first (x.float(), x.double())")


def _check_shapes(op, a_shape, b_shape):
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"{op}: both operands need at least one dimension, got shapes "
                         f"{a_shape} and {b_shape}")
    inner_a = a_shape[-1]
    inner_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"{op}: shapes {a_shape} and {b_shape} are not aligned "
                         f"({inner_a} != {inner_b})")


class MatMul(Function):
    """C = A @ B (see the module docstring for the gradients)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        try:
            return kernels_for(a).matmul(a, b)
        except ValueError:  # the batch axes do not broadcast
            raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} "
                             "cannot be broadcast together") from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        xp = array_module(a)
        # View vectors as matrices so one pair of formulas covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:  # (first: for vector @ vector the gradient goes () -> (1,) -> (1, 1))
            grad = xp.expand_dims(grad, -1)
        if a.ndim == 1:
            grad = xp.expand_dims(grad, -2)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = kernels_for(a).matmul(grad, xp.swapaxes(b2, -1, -2))
            grad_a = grad_a.reshape(grad_a.shape[:-2] + (-1,)) if a.ndim == 1 else grad_a
        if ctx.needs_input_grad[1]:
            grad_b = kernels_for(a).matmul(xp.swapaxes(a2, -1, -2), grad)
            grad_b = grad_b.reshape(grad_b.shape[:-1]) if b.ndim == 1 else grad_b
        return grad_a, grad_b


def _product(op, a, b, ranks=None):
    """a @ b (``MatMul``) after op's checks: one dtype, the ranks op takes (``ranks``, a pair,
    or None for any), and aligned inner dims."""
    a, b = tensor_inputs(op, (a, b))
    check_same_dtype(op, (a, b))
    if ranks is not None and (a.ndim, b.ndim) != ranks:
        raise ValueError(f"{op}: expected a {ranks[0]}-D and a {ranks[1]}-D tensor, got shapes "
                         f"{a.shape} and {b.shape}")
    _check_shapes(op, a.shape, b.shape)
    return MatMul.apply(a, b)


def matmul(a, b):
    """a @ b with NumPy's (and PyTorch's) rules for vectors and broadcast batches."""
    return _product("matmul", a, b)


def dot(a, b):
    """sum_i a_i b_i of two 1-D tensors."""
    return _product("dot", a, b, ranks=(1, 1))


vdot = dot  # the same for real tensors (vdot conjugates a complex a)


def mv(a, b):
    """The matrix-vector product (m, n) @ (n,) -> (m,)."""
    return _product("mv", a, b, ranks=(2, 1))


def mm(a, b):
    """The matrix product (m, n) @ (n, p) -> (m, p)."""
    return _product("mm", a, b, ranks=(2, 2))


def bmm(a, b):
    """Batches of matrix products (b, m, n) @ (b, n, p) -> (b, m, p); the batch sizes must be
    equal (bmm does not broadcast)."""
    a, b = tensor_inputs("bmm", (a, b))
    if a.ndim == b.ndim == 3 and a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: batch sizes of shapes {a.shape} and {b.shape} differ")
    return _product("bmm", a, b, ranks=(3, 3))


def outer(a, b):
    """z_ij = a_i b_j of two 1-D tensors (a composite: einsum("i,j->ij"))."""
    a, b = tensor_inputs("outer", (a, b))
    if (a.ndim, b.ndim) != (1, 1):
        raise ValueError(f"outer: expected two 1-D tensors, got shapes {a.shape} and {b.shape}")
    return einsum("i,j->ij", a, b)


ger = outer


# --------------------------------------------------------------------------- einsum
LETTERS = string.ascii_letters  # the subscripts einsum knows, upper case sorting first


class EinSum(Function):
    """z = einsum("<inputs>-><output>", *operands), with explicit subscripts and no "...".

    dL/d(operand i) = einsum of dL/dz (subscripts: output) with the other operands, written
    with operand i's subscripts (see ``einsum_operand_grad``).
    """

    @staticmethod
    def forward(ctx, *arrays, inputs=(), output=""):
        ctx.save_for_backward(*arrays)
        ctx.subscripts = inputs, output  # (not ctx.output: the engine's, for retain_grad)
        return array_module(arrays[0]).einsum(f"{','.join(inputs)}->{output}", *arrays)

    @staticmethod
    def backward(ctx, grad):
        arrays = ctx.saved_tensors
        inputs, output = ctx.subscripts
        return tuple(einsum_operand_grad(grad, output, arrays, inputs, i) if needed
                     else None for i, needed in enumerate(ctx.needs_input_grad))


def einsum_operand_grad(grad, output, arrays, inputs, i):
    """dL/d(operand i) of z = einsum(inputs -> output) from dL/dz = ``grad``.

    The einsum of grad with the other operands can name only subscripts found among them, and
    each subscript once. So it is taken over ``kept``, operand i's distinct subscripts that
    appear in the output or in another operand; along a subscript summed in operand i alone,
    z does not depend on the position, so the gradient is broadcast along it; and a subscript
    repeated in operand i (a diagonal, "ii->i") receives the gradient on that diagonal only.
    """
    xp = array_module(grad)
    target = inputs[i]
    distinct = "".join(dict.fromkeys(target))
    others = [subscripts for j, subscripts in enumerate(inputs) if j != i]
    reached = set(output).union(*others)
    kept = "".join(c for c in distinct if c in reached)
    g = xp.einsum(f"{','.join([output] + others)}->{kept}", grad,
                  *(a for j, a in enumerate(arrays) if j != i))
    sizes = dict(zip(target, arrays[i].shape))
    g = g.reshape([sizes[c] if c in kept else 1 for c in distinct])
    g = xp.broadcast_to(g, [sizes[c] for c in distinct])
    if len(distinct) == len(target):
        return g
    full = xp.zeros(arrays[i].shape, dtype=grad.dtype)
    grids = xp.ix_(*(xp.arange(sizes[c]) for c in distinct))
    full[tuple(grids[distinct.index(c)] for c in target)] = g
    return full


def _parse_einsum(equation, shapes):
    """The equation's subscripts for each operand and for the output, explicit ("->" added
    where it is left out) and with each "..." spelled out as letters of its own, right-aligned
    as dims broadcast; and each subscript's size (the largest among the operands)."""
    inputs, arrow, output = equation.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: equation {equation!r} names {len(terms)} operand(s), got "
                         f"{len(shapes)}")
    for term in terms + [output]:
        named = term.replace("...", "", 1)
        if any(c not in LETTERS for c in named):
            raise ValueError(f"einsum: subscripts {term!r} of {equation!r} must be letters, "
                             "with at most one '...'")
    if not arrow:  # the subscripts named once, in alphabetical order, after "..."
        named = inputs.replace("...", "").replace(",", "")
        output = ("..." if "..." in inputs else "") + "".join(
            sorted(c for c in set(named) if named.count(c) == 1))
    widths = []
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        if len(shape) != named and not ("..." in term and len(shape) > named):
            raise ValueError(f"einsum: operand of shape {shape} does not fit subscripts "
                             f"{term!r} of {equation!r}")
        widths.append(len(shape) - named)
    if "..." in output and "..." not in inputs:
        raise ValueError(f"einsum: the output of {equation!r} has '...' but no operand does")
    spare = [c for c in LETTERS if c not in equation]
    width = max(widths, default=0)
    ellipsis = "".join(spare[:width])
    terms = [term.replace("...", ellipsis[width - w:]) for term, w in zip(terms, widths)]
    output = output.replace("...", ellipsis)
    named = set("".join(terms))
    if len(set(output)) != len(output) or not set(output) <= named:
        raise ValueError(f"einsum: the output subscripts of {equation!r} must be distinct and "
                         "appear among the operands'")
    sizes = {}
    for term, shape in zip(terms, shapes):
        for c, n in zip(term, shape):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"einsum: subscript {c!r} of {equation!r} has sizes "
                                 f"{sizes[c]} and {n} (operand shapes {list(shapes)})")
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]  # a size of 1 broadcasts
    return terms, output, sizes


def einsum(equation, *operands):
    """Sum of products of the operands' elements, as ``equation`` says ("ij,jk->ik" is a
    matrix product; "ii->i" a diagonal; "...ij,...jk->...ik" batches). Without "->" the output
    is the subscripts named once, in alphabetical order. Dims of size 1 broadcast, as in
    PyTorch. The operands may also be given as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = tensor_inputs("einsum", operands)
    check_same_dtype("einsum", operands)
    terms, output, sizes = _parse_einsum(equation, [t.shape for t in operands])
    operands = [t if t.shape == full else broadcast_to(t, full)
                for t, full in ((t, tuple(sizes[c] for c in term))
                                for t, term in zip(operands, terms))]
    return EinSum.apply(*operands, inputs=tuple(terms), output=output)


def tensordot(a, b, dims=2):
    """Contract ``a`` and ``b`` over pairs of dims: ``dims=n`` pairs a's last n dims with b's
    first n, ``dims=(dims_a, dims_b)`` lists them. A composite of einsum."""
    a, b = tensor_inputs("tensordot", (a, b))
    if isinstance(dims, int):
        if not 0 <= dims <= min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: dims={dims} must be in [0, {min(a.ndim, b.ndim)}] for "
                             f"shapes {a.shape} and {b.shape}")
        dims = (range(a.ndim - dims, a.ndim), range(dims))
    dims_a, dims_b = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(dims_a) != len(dims_b):
        raise ValueError(f"tensordot: dims {dims_a} and {dims_b} must pair up (same length)")
    dims_a = [normalize_dim(d, a.shape, "tensordot") for d in dims_a]
    dims_b = [normalize_dim(d, b.shape, "tensordot") for d in dims_b]
    subscripts_a = list(LETTERS[:a.ndim])
    subscripts_b = list(LETTERS[a.ndim:a.ndim + b.ndim])
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise ValueError(f"tensordot: dim {da} of shape {a.shape} and dim {db} of shape "
                             f"{b.shape} differ in size ({a.shape[da]} != {b.shape[db]})")
        subscripts_b[db] = subscripts_a[da]
    output = ([c for d, c in enumerate(subscripts_a) if d not in dims_a]
              + [c for d, c in enumerate(subscripts_b) if d not in dims_b])
    return einsum(f"{''.join(subscripts_a)},{''.join(subscripts_b)}->{''.join(output)}", a, b)


def inner(a, b):
    """sum over the last dims of ``a`` and ``b``: shape a.shape[:-1] + b.shape[:-1]; a 0-d
    operand multiplies instead. A composite of tensordot (or mul)."""
    a, b = tensor_inputs("inner", (a, b))
    check_same_dtype("inner", (a, b))
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    return tensordot(a, b, dims=([-1], [-1]))
