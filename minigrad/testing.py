"""Numerical gradient checks: is ``backward`` the derivative of ``forward``?

For an op y = f(x) we draw a fixed random cotangent v (same shape as y) and study the scalar

    L(x) = sum(v * f(x)),     whose gradient is  dL/dx = J^T v,

exactly what ``backward`` computes when given ``grad=v``. Central differences estimate the same
quantity without any calculus:

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)        error O(eps^2)

one element at a time (``full`` check). For a large input that costs two forward passes per
element, so past ``max_full_elements`` we compare directional derivatives instead: for random
unit directions d,

    <dL/dx, d>  ~  (L(x + eps d) - L(x - eps d)) / (2 eps).

Both need float64: in float32 the rounding error of L (about 1e-7 |L|) divided by 2 eps
swamps the difference being measured.
"""

import numpy as np

from minigrad.autograd import no_grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with its numerical estimate."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, max_full_elements=2000,
              directions=8, seed=0):
    """Check ``backward`` of ``fn(*inputs)`` against central differences; True or raise.

    ``inputs`` are Tensors; those with ``requires_grad`` must be float64 and are checked.
    A check passes when |analytic - numeric| <= atol + rtol |numeric| everywhere.
    """
    inputs = list(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 "
                            "(finite differences are meaningless in float32)")
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    cotangent = rng.standard_normal(out.shape)
    for i in checked:
        inputs[i].grad = None
    out.backward(Tensor(cotangent))

    def loss():
        with no_grad():
            return float((fn(*inputs).data * cotangent).sum())

    for i in checked:
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
        if x.data.size <= max_full_elements:
            numeric = _full_numeric_gradient(loss, x.data, eps)
            _compare(analytic, numeric, atol, rtol, f"input {i} {x.shape}")
        else:
            for k in range(directions):
                d = rng.standard_normal(x.shape)
                d /= np.linalg.norm(d)
                numeric = _directional_derivative(loss, x.data, d, eps)
                _compare(np.array([np.sum(analytic * d)]), np.array([numeric]), atol, rtol,
                         f"input {i} {x.shape}, random direction {k}")
    return True


def _full_numeric_gradient(loss, data, eps):
    """(L(x + eps e_i) - L(x - eps e_i)) / (2 eps) for every element i, perturbing in place."""
    numeric = np.zeros(data.shape)
    for j in np.ndindex(data.shape):
        original = data[j]
        data[j] = original + eps
        plus = loss()
        data[j] = original - eps
        minus = loss()
        data[j] = original
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric


def _directional_derivative(loss, data, direction, eps):
    original = data.copy()
    data += eps * direction
    plus = loss()
    data[...] = original - eps * direction
    minus = loss()
    data[...] = original
    return (plus - minus) / (2 * eps)


def _compare(analytic, numeric, atol, rtol, where):
    error = np.abs(analytic - numeric)
    bad = error > atol + rtol * np.abs(numeric)
    if bad.any():
        j = np.unravel_index(np.argmax(error - rtol * np.abs(numeric)), error.shape)
        raise GradcheckError(
            f"gradcheck failed for {where}: {int(bad.sum())} of {bad.size} entries differ; "
            f"worst at {tuple(int(k) for k in j)}: analytic {analytic[j]:.8g}, "
            f"numeric {numeric[j]:.8g}")
