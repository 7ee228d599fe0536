"""In-place changes: PyTorch's ``add_``/``+=``/``x[i] = v`` and the version counter that keeps
them from corrupting a gradient, checked against what PyTorch does in the same situations."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


def test_manual_sgd_idiom_updates_the_weights_in_place():
    """``for p in model.parameters(): p -= lr * p.grad`` under no_grad: the tutorial loop."""
    mg.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = mg.randn(16, 3), mg.randn(16, 1)
    before = [p.data.copy() for p in model.parameters()]
    losses = []
    for _ in range(20):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with mg.no_grad():
            for p in model.parameters():
                expected = p.data - 0.1 * p.grad.data
                p -= 0.1 * p.grad
                np.testing.assert_allclose(p.data, expected, rtol=1e-6)
    params = list(model.parameters())
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    assert all(not np.array_equal(p.data, b) for p, b in zip(params, before))
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("update", [
    lambda p: p.__iadd__(1.0), lambda p: p.__isub__(1.0), lambda p: p.__imul__(2.0),
    lambda p: p.__itruediv__(2.0), lambda p: p.add_(1.0), lambda p: p.zero_(),
    lambda p: p.copy_(mg.ones(3)), lambda p: p.clamp_(0, 1), lambda p: p.fill_(2.0),
    lambda p: (p.__setitem__(0, 5.0), p)[1]])
def test_a_leaf_that_requires_grad_is_changed_in_place_only_under_no_grad(update):
    p = mg.tensor([-1.5, 0.25, 2.0], requires_grad=True)
    before = p.data.copy()
    with pytest.raises(RuntimeError, match="a leaf tensor that requires grad cannot be changed"):
        update(p)
    np.testing.assert_array_equal(p.data, before)  # nothing was written
    assert p._version == 0
    with mg.no_grad():
        assert update(p) is p
    assert not np.array_equal(p.data, before)
    assert p._version >= 1 and p.requires_grad and p.is_leaf


def test_a_tensor_inside_a_graph_is_refused_in_place():
    x = mg.randn(3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="part of a graph"):
        y.add_(1)


def test_in_place_results_match_pytorch_values():
    a = mg.tensor([1.0, -2.0, 3.0])
    a.add_(mg.tensor([1.0, 1.0, 1.0]), alpha=2)
    np.testing.assert_allclose(a.numpy(), [3.0, 0.0, 5.0])
    a.sub_(1.0).mul_(2.0).div_(4.0)
    np.testing.assert_allclose(a.numpy(), [1.0, -0.5, 2.0])
    a.clamp_(min=0.0)
    np.testing.assert_allclose(a.numpy(), [1.0, 0.0, 2.0])
    a.pow_(2).neg_()
    np.testing.assert_allclose(a.numpy(), [-1.0, 0.0, -4.0])
    b = mg.zeros(2, 3)
    b[0] = 5.0
    b[:, 1] += 1.0
    b[b > 4] = 7.0
    np.testing.assert_allclose(b.numpy(), [[7, 7, 7], [0, 1, 0]])
    b.copy_(mg.arange(3))  # broadcast and cast, as torch's copy_
    np.testing.assert_allclose(b.numpy(), [[0, 1, 2], [0, 1, 2]])
    assert b.dtype == np.float32


def test_in_place_refuses_a_result_that_does_not_fit():
    x = mg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"add_: a result of shape \(4, 2, 3\) does not fit"):
        x.add_(mg.ones(4, 2, 3))
    with pytest.raises(TypeError, match="cannot be written into a int64 tensor"):
        mg.arange(3).add_(0.5)
    counts = mg.arange(3)
    counts += 2  # an int into an int tensor is fine
    assert counts.dtype == np.int64 and counts.tolist() == [2, 3, 4]


def test_changing_a_saved_input_is_refused_at_backward_naming_the_op():
    x = mg.randn(3, requires_grad=True)
    a = mg.ones(3)
    y = (x * a).sum()
    a.mul_(2)
    with pytest.raises(RuntimeError, match="backward of Mul: its input 1 .* version 1"):
        y.backward()


def test_changing_a_weight_between_forward_and_backward_is_refused():
    """PyTorch refuses this too: the matmul saved the old weight."""
    w = mg.randn(3, 2, requires_grad=True)
    loss = (mg.randn(4, 3) @ w).sum()
    with mg.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match="backward of MatMul"):
        loss.backward()


def test_changing_an_input_that_was_not_saved_is_allowed():
    """Add keeps no input for its backward, so changing one changes no gradient (as PyTorch)."""
    x = mg.randn(3, requires_grad=True)
    a = mg.ones(3)
    y = (x + a).sum()
    a.add_(1)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(3))


def test_the_optimizer_step_after_backward_leaves_the_next_forward_correct():
    w = mg.randn(3, requires_grad=True)
    for _ in range(2):
        loss = (w * w).sum()
        loss.backward()
        with mg.no_grad():
            w -= 0.1 * w.grad
        w.grad = None
    assert w._version == 2


def test_a_view_shares_its_base_tensors_version_counter():
    """As in PyTorch: a step on w is seen by a graph that saved w.T (a view of w)."""
    w = mg.randn(2, 3, requires_grad=True)
    loss = (mg.randn(4, 3) @ w.T).sum()
    with mg.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match="backward of MatMul: its input 1 .* version 1"):
        loss.backward()
    base = mg.zeros(3)
    view, detached = base[1:], base.detach()
    view.add_(1)
    assert base._version == view._version == detached._version == 1
    assert base.tolist() == [0.0, 1.0, 1.0]
    copy = base.clone()
    copy.add_(1)
    assert copy._version == 1 and base._version == 1


def test_python_numbers_and_lists_are_written_as_pytorch_writes_them():
    flags = mg.tensor([False, False])
    flags[0] = 1
    counts = mg.tensor([1, 2])
    counts.fill_(1.5)  # a Python number is cast: PyTorch writes 1 too
    values = mg.zeros(2)
    values[:] = [5.0, 6.0]
    assert flags.tolist() == [True, False] and counts.tolist() == [1, 1]
    assert values.tolist() == [5.0, 6.0] and values.dtype == np.float32
