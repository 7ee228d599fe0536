"""The engine: graph building, topological order, accumulation, freeing, grad mode, errors."""

import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import autograd
from minigrad.autograd import Function, topological_order, unbroadcast
from minigrad.profiler import profile


def test_a_shared_input_accumulates_gradients_from_every_path():
    x = mg.tensor(3.0, requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad.item() == 7.0


def test_backward_of_a_long_chain_is_iterative_and_runs_each_node_once():
    # Ten times Python's recursion limit: a recursive graph walk would raise RecursionError.
    n = max(10_000, 10 * sys.getrecursionlimit())
    x = mg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0001
    assert len(topological_order(y._ctx)) == n
    with profile() as prof:
        y.backward()
    assert [(s.op, s.backward_calls) for s in prof.stats] == [("Mul", n)]
    assert x.grad.item() == pytest.approx(1.0001**n, rel=1e-3)


def test_twenty_level_diamond_is_visited_once_per_node():
    x0 = mg.tensor(1.0, dtype=np.float64, requires_grad=True)
    a = mg.tensor(0.5, dtype=np.float64, requires_grad=True)
    b = mg.tensor(0.75, dtype=np.float64, requires_grad=True)
    x = x0
    for _ in range(20):
        x = x * a + x * b  # x_{k+1} = (a + b) x_k, so x_20 = (a + b)^20 x_0
    assert len(topological_order(x._ctx)) == 20 * 3  # two muls and an add per level, once each
    # Backward runs each of the 60 nodes once (a walk over paths would run 2^20 of them).
    with profile() as prof:
        x.backward()
    calls = {s.op: s.backward_calls for s in prof.stats}
    assert calls == {"Mul": 40, "Add": 20}
    assert x.item() == pytest.approx(1.25**20)
    assert x0.grad.item() == pytest.approx(1.25**20)
    assert a.grad.item() == pytest.approx(20 * 1.25**19)  # d/da (a + b)^20
    assert b.grad.item() == pytest.approx(20 * 1.25**19)


def test_topological_order_lists_every_node_once_after_its_inputs():
    x = mg.tensor(2.0, requires_grad=True)
    y = x * 3
    z = y + y * x
    order = topological_order(z._ctx)
    assert len(order) == len(set(order)) == 3
    assert order.index(y._ctx) < order.index(z._ctx)


def test_backward_twice_with_retain_graph_doubles_leaf_gradients():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    w = mg.tensor([3.0, -1.0], requires_grad=True)
    loss = (x * w).sum() * 2
    loss.backward(retain_graph=True)
    first_x, first_w = x.grad.numpy().copy(), w.grad.numpy().copy()
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first_x)
    np.testing.assert_array_equal(w.grad.numpy(), 2 * first_w)


def test_backward_on_a_freed_graph_raises_a_clear_error():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    loss = y.sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        loss.backward()
    with pytest.raises(RuntimeError, match="already freed"):
        (y * 3).sum().backward()  # a new graph that goes through the freed part


def test_freed_graph_releases_saved_arrays():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    node = y._ctx
    y.sum().backward()
    assert node.saved_tensors == () and node.parents == ()


def test_intermediates_hold_no_grad_unless_retained():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 3
    kept = (x + 1).retain_grad()
    (hidden * kept).sum().backward()
    assert hidden.grad is None
    np.testing.assert_array_equal(kept.grad.numpy(), hidden.numpy())  # d(h*k)/dk = h
    np.testing.assert_array_equal(x.grad.numpy(), [3 * 2 + 3 * 1, 3 * 3 + 3 * 2])


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = mg.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"single-element tensor, got shape \(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"grad shape \(3,\) does not match tensor shape "
                                         r"\(2, 3\)"):
        (x * 2).backward(mg.ones(3))
    (x * 2).backward(mg.ones(2, 3))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_backward_on_a_tensor_without_graph_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (mg.ones(2) * 2).sum().backward()


def test_backward_on_a_leaf_sets_its_own_gradient():
    x = mg.tensor(5.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


def test_no_grad_builds_no_graph_and_restores_the_mode():
    x = mg.ones(2, requires_grad=True)
    with mg.no_grad():
        y = x * 2
        assert not mg.is_grad_enabled()
        with mg.enable_grad():
            z = x * 2
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_works_as_a_decorator_and_restores_after_an_exception():
    @mg.no_grad()
    def double(t):
        return t * 2

    assert not double(mg.ones(2, requires_grad=True)).requires_grad
    with pytest.raises(ZeroDivisionError):
        with mg.no_grad():
            1 / 0
    assert mg.is_grad_enabled()


def test_ops_on_constants_record_nothing():
    y = mg.ones(2) * mg.ones(2)
    assert y.grad_fn is None and not y.requires_grad


def test_integer_results_are_constants():
    x = mg.tensor([1.5, 2.5], requires_grad=True)
    assert not x.long().requires_grad
    assert not x.argmax().requires_grad


def test_unbroadcast_sums_added_and_stretched_axes():
    grad = np.ones((4, 2, 3))
    np.testing.assert_array_equal(unbroadcast(grad, (3,)), np.full(3, 8.0))
    np.testing.assert_array_equal(unbroadcast(grad, (2, 1)), np.full((2, 1), 12.0))
    np.testing.assert_array_equal(unbroadcast(grad, (1, 1, 1)), np.full((1, 1, 1), 24.0))
    with pytest.raises(ValueError, match=r"\(4, 2, 3\) does not broadcast from input shape "
                                         r"\(5,\)"):
        unbroadcast(grad, (5,))


def test_a_custom_function_plugs_into_the_engine():
    class Cube(Function):
        """z = a^3; dz/da = 3 a^2."""

        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a**3

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return (3 * a**2 * grad,)

    x = mg.tensor([1.0, -2.0], requires_grad=True)
    Cube.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 12.0])


def test_a_wrong_gradient_shape_from_an_op_is_reported():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, grad):
            return (np.ones(7),)

    with pytest.raises(ValueError, match=r"unbroadcast: gradient of shape \(7,\)"):
        BadShape.apply(mg.ones(3, requires_grad=True)).backward()


def test_a_reused_no_grad_instance_nests_and_recursion_restores_the_mode():
    mode = mg.no_grad()

    @mode
    def depth(n):
        assert not mg.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(3) == 3 and mg.is_grad_enabled()
    with mode:
        with mode:
            pass
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


# ------------------------------------------------------------------ hook points
def test_op_observers_see_every_call_in_order_and_can_be_removed():
    seen, nodes = [], []

    def observer(node, phase, arrays, call):
        seen.append((type(node).__name__, phase, tuple(a.shape for a in arrays)))
        nodes.append(node)
        return call()

    x = mg.tensor([1.0, 2.0], requires_grad=True)
    handle = autograd.register_op_observer(observer)
    try:
        (x.exp() * 3.0).sum().backward()
    finally:
        handle.remove()
    # forward sees the inputs, backward the gradient of the output
    assert seen == [("Exp", "forward", ((2,),)), ("Mul", "forward", ((2,), ())),
                    ("Sum", "forward", ((2,),)), ("Sum", "backward", ((),)),
                    ("Mul", "backward", ((2,),)), ("Exp", "backward", ((2,),))]
    assert nodes[:3] == nodes[3:][::-1]  # each node is seen at its forward and its backward
    x.exp()
    assert len(seen) == 6  # removed: not called any more
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_an_observer_returns_the_result_and_observers_nest():
    calls = []

    def outer(node, phase, arrays, call):
        calls.append("outer")
        return call()

    def doubling(node, phase, arrays, call):
        calls.append("inner")
        return 2 * call()  # what the observer returns is the op's result

    handles = [autograd.register_op_observer(outer), autograd.register_op_observer(doubling)]
    try:
        y = mg.tensor([1.0, 2.0]) + 1.0
    finally:
        for handle in handles:
            handle.remove()
    assert calls == ["outer", "inner"]
    assert y.tolist() == [4.0, 6.0]


def test_the_grad_ready_hook_runs_once_per_leaf_when_its_gradient_is_complete():
    a = mg.tensor(2.0, requires_grad=True)
    b = mg.tensor(5.0, requires_grad=True)
    c = mg.tensor(7.0)  # needs no gradient: no hook
    ready = []
    handle = autograd.register_grad_ready_hook(lambda leaf: ready.append((leaf, leaf.grad.item())))
    try:
        # a reaches the loss along three paths; its hook must wait for all of them
        loss = a * a * b + a * c + b
        loss.backward()
    finally:
        handle.remove()
    assert [(leaf is a, grad) for leaf, grad in ready if leaf is a] == [(True, 2 * 2 * 5 + 7)]
    assert [grad for leaf, grad in ready if leaf is b] == [2 * 2 + 1]
    assert len(ready) == 2
    assert a.grad.item() == 27.0 and b.grad.item() == 5.0


def test_the_grad_ready_hook_runs_for_a_leaf_root_and_only_while_registered():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    ready = []
    handle = autograd.register_grad_ready_hook(ready.append)
    x.backward(mg.tensor([1.0, 1.0]))
    handle.remove()
    (x * 2).sum().backward()
    assert ready == [x]
    assert x.grad.tolist() == [3.0, 3.0]


def test_an_op_without_any_tensor_input_is_refused_like_pytorchs():
    with pytest.raises(TypeError, match="Exp: expected a Tensor among the inputs, got float"):
        mg.exp(2.0)
