"""One mechanism for testing every op: an ``OpCase`` says how to draw inputs for an op and how to
call it in minigrad and in PyTorch; ``op_tests(cases)`` turns a list of cases into two tests,

* ``test_gradcheck``: backward equals central differences (float64, minigrad.testing);
* ``test_matches_torch``: forward values and input gradients equal PyTorch's (float32 and
  float64), skipped with the reason when PyTorch is not installed.

Hypothesis draws the shapes and keyword arguments, and a seed for the values; the values come
from a normal distribution, then ``domain`` moves them where the op is differentiable (positive
for log, away from 0 for abs, ...), so random ties and kinks cannot make a check flaky.
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.testing import gradcheck

EXAMPLES = settings(max_examples=25, deadline=None, derandomize=True)


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable(n, max_dims=3):
    """``n`` shapes that broadcast together (some with size-1 or missing axes)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, max_dims=max_dims, max_side=4).map(
        lambda drawn: drawn.input_shapes)


def away_from_zero(x, gap=0.3):
    """Move values out of (-gap, gap): for ops with a kink or pole at 0."""
    return np.where(x >= 0, x + gap, x - gap)


def positive(x):
    return np.abs(x) + 0.5


@dataclass
class OpCase:
    """How to test one op.

    ``draw(data)`` returns ``(shapes, kwargs)``; ``fn(*tensors, **kwargs)`` is the minigrad call
    and ``torch_fn(*tensors, **kwargs)`` the PyTorch call; ``domain(i, array)`` adjusts the
    values of input i. ``no_grad_inputs`` lists inputs that are not differentiable (masks).
    ``gradcheck_marks``: pytest marks for this case's gradcheck only (``pytest.mark.slow`` for
    one that takes seconds; give it a smaller-shape twin so the fast subset still checks it).
    """

    name: str
    draw: Callable
    fn: Callable
    torch_fn: Callable
    domain: Callable = staticmethod(lambda i, x: x)
    no_grad_inputs: tuple = ()
    dtypes: dict = field(default_factory=dict)  # input index -> dtype other than float
    gradcheck_marks: tuple = ()

    def arrays(self, data, dtype):
        drawn_shapes, kwargs = self.draw(data)
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
        arrays = []
        for i, shape in enumerate(drawn_shapes):
            if i in self.dtypes:
                arrays.append(rng.integers(0, 2, size=shape).astype(self.dtypes[i]))
            else:
                arrays.append(self.domain(i, rng.standard_normal(shape)).astype(dtype))
        return arrays, kwargs

    def requires_grad(self, i, array):
        return i not in self.no_grad_inputs and np.issubdtype(array.dtype, np.floating)


def op_tests(cases):
    """The two parametrized tests for a module's list of ``OpCase``s."""
    ids = [case.name for case in cases]
    gradcheck_cases = [pytest.param(case, marks=case.gradcheck_marks, id=case.name)
                       for case in cases]

    @pytest.mark.parametrize("case", gradcheck_cases)
    @EXAMPLES
    @given(data=st.data())
    def test_gradcheck(case, data):
        arrays, kwargs = case.arrays(data, np.float64)
        tensors = [mg.tensor(a, requires_grad=case.requires_grad(i, a))
                   for i, a in enumerate(arrays)]
        assert gradcheck(lambda *xs: case.fn(*xs, **kwargs), tensors)

    @pytest.mark.torch
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("case", cases, ids=ids)
    @EXAMPLES
    @given(data=st.data())
    def test_matches_torch(case, dtype, data):
        arrays, kwargs = case.arrays(data, dtype)
        assert_matches_torch(case, arrays, kwargs)

    return test_gradcheck, test_matches_torch


def import_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the test oracle: "
                                                ".venv/bin/pip install torch==2.13.0")
    # One thread: the oracle's tensors are tiny, and on a busy machine torch's spinning
    # worker threads made these tests several times slower.
    torch.set_num_threads(1)
    return torch


def tolerances(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def assert_matches_torch(case, arrays, kwargs):
    """Same inputs and upstream gradient into minigrad and PyTorch; values and grads must agree.

    PyTorch always computes in float64 here: it is the oracle for the *exact* result, and our
    float32 output must be within float32 rounding of it. (Comparing with PyTorch's own float32
    output would compare two rounding errors: where our formula is the more precise one, as
    for GELU's tanh form at large negative inputs, the test would fail for the wrong reason.)
    """
    torch = import_torch()
    grad_flags = [case.requires_grad(i, a) for i, a in enumerate(arrays)]
    floating = [np.issubdtype(a.dtype, np.floating) for a in arrays]
    dtype = next(a.dtype for a, f in zip(arrays, floating) if f)
    ours = [mg.tensor(a, requires_grad=g) for a, g in zip(arrays, grad_flags)]
    theirs = [torch.tensor(a.astype(np.float64) if f else a, requires_grad=g)
              for a, f, g in zip(arrays, floating, grad_flags)]
    out = case.fn(*ours, **kwargs)
    expected = case.torch_fn(*theirs, **kwargs)
    tol = tolerances(dtype)
    assert out.shape == tuple(expected.shape), f"{case.name}: {out.shape} vs {expected.shape}"
    assert out.dtype == dtype, f"{case.name}: {dtype} inputs gave a {out.dtype} result"
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tol,
                               err_msg=f"{case.name} forward")

    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    out.backward(mg.tensor(upstream))
    expected.backward(torch.tensor(upstream.astype(np.float64)))
    for i, (mine, torch_input) in enumerate(zip(ours, theirs)):
        if not mine.requires_grad:
            continue
        torch_grad = (torch.zeros_like(torch_input) if torch_input.grad is None
                      else torch_input.grad).numpy()
        assert mine.grad is not None, f"{case.name}: input {i} received no gradient"
        assert mine.grad.dtype == mine.dtype, f"{case.name}: gradient dtype {mine.grad.dtype}"
        np.testing.assert_allclose(mine.grad.numpy(), torch_grad, **tol,
                                   err_msg=f"{case.name} gradient of input {i}")


def unary(name, fn, torch_fn, domain=lambda i, x: x, shape=shapes(), kwargs=st.just({})):
    """An OpCase for an op with one tensor input of any shape."""
    return OpCase(name, lambda data: ([data.draw(shape, label="shape")],
                                      data.draw(kwargs, label="kwargs")),
                  fn, torch_fn, domain)


def binary(name, fn, torch_fn, domain=lambda i, x: x):
    """An OpCase for an op with two inputs of mutually broadcastable shapes."""
    return OpCase(name, lambda data: (data.draw(broadcastable(2), label="shapes"), {}),
                  fn, torch_fn, domain)
