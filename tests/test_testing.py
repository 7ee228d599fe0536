"""gradcheck itself: it must pass correct gradients and catch wrong ones."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function
from minigrad.testing import GradcheckError, gradcheck


class SquareWithWrongGradient(Function):
    """z = a^2 with the classic mistake dz/da = a (the factor 2 forgotten)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * a,)


def float64_input(*shape, seed=0):
    values = np.random.default_rng(seed).standard_normal(shape)
    return mg.tensor(values, requires_grad=True)


def test_passes_a_correct_gradient():
    x, w = float64_input(3, 4), float64_input(4, 2, seed=1)
    assert gradcheck(lambda a, b: (a @ b).tanh(), [x, w])


def test_catches_a_wrong_gradient_elementwise():
    with pytest.raises(GradcheckError, match=r"input 0 \(3,\).*analytic .* numeric"):
        gradcheck(SquareWithWrongGradient.apply, [float64_input(3)])


def test_large_inputs_use_random_directions_and_still_catch_errors():
    big = float64_input(60, 50)  # 3,000 elements: above max_full_elements
    assert gradcheck(lambda a: (a * a).sum(axis=0), [big])
    with pytest.raises(GradcheckError, match="random direction 0"):
        gradcheck(SquareWithWrongGradient.apply, [big])


def test_a_missing_gradient_is_caught():
    x = float64_input(3)
    with pytest.raises(GradcheckError):
        gradcheck(lambda a: a.detach() * a.detach() + a * 0, [x])


def test_refuses_float32_inputs_and_inputs_without_grad():
    with pytest.raises(TypeError, match="float32; use float64"):
        gradcheck(mg.exp, [mg.ones(2, requires_grad=True)])
    with pytest.raises(ValueError, match="no input has requires_grad"):
        gradcheck(mg.exp, [mg.ones(2, dtype=np.float64)])


def test_inputs_are_restored_after_the_check():
    x = float64_input(2, 3)
    before = x.numpy().copy()
    gradcheck(mg.exp, [x])
    np.testing.assert_array_equal(x.numpy(), before)
