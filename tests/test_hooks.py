"""Hooks, against PyTorch: a tensor's ``register_hook`` and ``register_post_accumulate_grad_hook``,
a module's forward (pre-)hooks and full backward (pre-)hooks: the order they fire in, the
gradients they see and change, removal by handle; and ``numpy()`` of a tensor that requires grad
(a read-only view).

Each scenario is one function of ``lib`` (``minigrad`` or ``torch``, whose names agree), run once
by minigrad and once by PyTorch through ``torch_reference``."""

import warnings

import numpy as np
import pytest

import minigrad as mg

RNG = np.random.default_rng(0)
WEIGHTS = {"0.weight": RNG.standard_normal((4, 3)).astype(np.float32),
           "0.bias": RNG.standard_normal(4).astype(np.float32),
           "2.weight": RNG.standard_normal((2, 4)).astype(np.float32),
           "2.bias": RNG.standard_normal(2).astype(np.float32)}
X = RNG.standard_normal((5, 3)).astype(np.float32)
UPSTREAM = RNG.standard_normal((5, 2)).astype(np.float32)
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


def small_model(lib):
    """Linear(3, 4), Tanh, Linear(4, 2) with the weights of ``WEIGHTS``."""
    model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))
    model.load_state_dict({key: lib.tensor(value) for key, value in WEIGHTS.items()})
    return model


def values(tensor):
    return tensor.detach().numpy().copy()


def weighted_sum(lib, output):
    """sum(output * UPSTREAM): its gradient with respect to ``output`` is UPSTREAM."""
    return (output * lib.tensor(UPSTREAM)).sum()


def without_torch_warnings(scenario):
    """``scenario(torch)`` without the warning PyTorch gives for a full backward hook on a
    module whose inputs need no gradient (minigrad runs it then, as PyTorch does)."""
    def run(torch):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return scenario(torch)
    return run


def assert_same(ours, reference):
    assert ours.keys() == reference.keys()
    for key, value in ours.items():
        np.testing.assert_allclose(value, reference[key], **TOLERANCE, err_msg=key)


# ----------------------------------------------------------------- order
def hook_events(lib):
    """Every module hook of the model, its layers' tensor and post-accumulate hooks on the
    weights, and a tensor hook on the output, in the order they fire (forward and backward)."""
    events = []
    model = small_model(lib)
    for name, module in [("0", model[0]), ("1", model[1]), ("2", model[2]), ("model", model)]:
        module.register_forward_pre_hook(lambda m, args, n=name: events.append(f"{n} pre"))
        module.register_forward_hook(lambda m, args, out, n=name: events.append(f"{n} forward"))
        module.register_full_backward_pre_hook(
            lambda m, grad_output, n=name: events.append(f"{n} backward pre"))
        module.register_full_backward_hook(
            lambda m, grad_input, grad_output, n=name: events.append(
                f"{n} backward, grad_input "
                + " ".join("None" if g is None else "x".join(map(str, g.shape))
                           for g in grad_input)))
    for name in ("0.weight", "2.weight"):
        weight = dict(model.named_parameters())[name]
        weight.register_hook(lambda grad, n=name: events.append(f"{n} hook"))
        weight.register_post_accumulate_grad_hook(lambda w, n=name: events.append(f"{n} post"))
    output = model(lib.tensor(X))
    output.register_hook(lambda grad: events.append("output hook"))
    events.append("backward")
    weighted_sum(lib, output).backward()
    return {"events": np.array(events)}


def test_hooks_fire_in_pytorchs_order(torch_reference):
    expected = torch_reference("order", without_torch_warnings(hook_events))["events"].tolist()
    ours = hook_events(mg)["events"].tolist()
    assert ours == expected
    assert expected[:9] == ["model pre", "0 pre", "0 forward", "1 pre", "1 forward", "2 pre",
                            "2 forward", "model forward", "backward"]
    assert expected[-6:] == ["1 backward pre", "1 backward, grad_input 5x4", "0 backward pre",
                             "0 backward, grad_input None", "0.weight hook", "0.weight post"]


# ----------------------------------------------------------------- tensor hooks
def changed_gradients(lib):
    """Tensor hooks that change gradients: the hidden layer's output has its gradient doubled
    (and retains it), the last weight two hooks (x2, then +1, each seeing the one before)."""
    model = small_model(lib)
    x = lib.tensor(X, requires_grad=True)
    hidden = model[0](x)
    hidden.register_hook(lambda grad: grad * 2)
    hidden.retain_grad()
    weight = model[2].weight
    weight.register_hook(lambda grad: grad * 2)
    weight.register_hook(lambda grad: grad + 1)
    weighted_sum(lib, model[2](model[1](hidden))).backward()
    results = {f"grad {name}": values(p.grad) for name, p in model.named_parameters()}
    results.update({"grad x": values(x.grad), "grad hidden": values(hidden.grad)})
    return results


def test_tensor_hooks_that_change_gradients_give_pytorchs_grads(torch_reference):
    expected = torch_reference("changed", changed_gradients)
    assert_same(changed_gradients(mg), expected)
    # the doubling reached everything below the hidden layer: grads there are twice a plain run
    plain = mg.tensor(X, requires_grad=True)
    model = small_model(mg)
    weighted_sum(mg, model(plain)).backward()
    np.testing.assert_allclose(expected["grad x"], 2 * plain.grad.numpy(), **TOLERANCE)
    np.testing.assert_allclose(expected["grad 2.weight"], 2 * model[2].weight.grad.numpy() + 1,
                               **TOLERANCE)


def leaf_used_three_times(lib):
    """A leaf w reaching the loss along three paths, two backward passes: what its tensor hook
    and its post-accumulate hook see, each call."""
    w = lib.tensor(np.array([1.0, -2.0, 3.0], dtype=np.float32), requires_grad=True)
    x = lib.tensor(np.array([0.5, 1.5, -1.0], dtype=np.float32))
    hook_inputs, after_accumulation = [], []
    w.register_hook(lambda grad: hook_inputs.append(values(grad)))
    w.register_post_accumulate_grad_hook(lambda leaf: after_accumulation.append(values(leaf.grad)))
    for _ in range(2):
        ((w * x).sum() + (w ** 2).sum() + w.sum()).backward()
    return {"hook inputs": np.stack(hook_inputs), "after accumulation": np.stack(after_accumulation)}


def test_a_leafs_hooks_fire_once_per_backward_however_often_it_is_used(torch_reference):
    expected = torch_reference("three uses", leaf_used_three_times)
    ours = leaf_used_three_times(mg)
    assert_same(ours, expected)
    # one call per pass, with the gradient of all three paths: x + 2 w + 1, then accumulated
    one_pass = [0.5 + 2 + 1, 1.5 - 4 + 1, -1.0 + 6 + 1]
    np.testing.assert_allclose(ours["hook inputs"], [one_pass, one_pass])
    np.testing.assert_allclose(ours["after accumulation"], [one_pass, np.multiply(2, one_pass)])


def test_hooks_run_in_registration_order_each_on_the_previous_result():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda grad: (seen.append(grad.tolist()), grad * 10)[1])
    x.register_hook(lambda grad: seen.append(grad.tolist()))  # None: keeps the gradient
    x.register_hook(lambda grad: grad + 1)
    (x * mg.tensor([3.0, 4.0])).sum().backward()
    assert seen == [[3.0, 4.0], [30.0, 40.0]]
    assert x.grad.tolist() == [31.0, 41.0]


def test_a_leaf_root_runs_its_hooks():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    x.register_hook(lambda grad: grad * 3)
    x.register_post_accumulate_grad_hook(lambda leaf: calls.append(leaf.grad.tolist()))
    x.backward(mg.tensor([1.0, -1.0]))
    assert calls == [[3.0, -3.0]] and x.grad.tolist() == [3.0, -3.0]


# ----------------------------------------------------------------- module backward hooks
def backward_hook_gradients(lib):
    """What each layer's full backward hook and backward pre-hook see, the Tanh's hook halving
    its grad_input, and the resulting gradients of the input and the parameters."""
    model = small_model(lib)
    seen = {}

    def record(name, scale=None):
        def hook(module, grad_input, grad_output):
            seen[f"{name} grad_input"] = values(grad_input[0])
            seen[f"{name} grad_output"] = values(grad_output[0])
            return None if scale is None else (grad_input[0] * scale,)
        return hook

    def record_pre(name):
        def hook(module, grad_output):
            seen[f"{name} pre grad_output"] = values(grad_output[0])
        return hook

    for name, scale in [("0", None), ("1", 0.5), ("2", None)]:
        model[int(name)].register_full_backward_hook(record(name, scale))
        model[int(name)].register_full_backward_pre_hook(record_pre(name))
    x = lib.tensor(X, requires_grad=True)
    weighted_sum(lib, model(x)).backward()
    seen.update({f"grad {name}": values(p.grad) for name, p in model.named_parameters()})
    seen["grad x"] = values(x.grad)
    return seen


def test_full_backward_hooks_see_pytorchs_gradients_and_can_change_them(torch_reference):
    expected = torch_reference("module backward", backward_hook_gradients)
    ours = backward_hook_gradients(mg)
    assert_same(ours, expected)
    np.testing.assert_allclose(ours["2 grad_output"], UPSTREAM)
    # the Tanh's hook halved what flows into layer 0: its grad_output is half the Tanh's input's
    np.testing.assert_allclose(ours["0 grad_output"], 0.5 * ours["1 grad_input"])


def test_a_backward_pre_hook_can_replace_grad_output():
    layer = mg.nn.Linear(2, 1)
    layer.register_full_backward_pre_hook(lambda m, grad_output: (grad_output[0] * 0,))
    layer(mg.tensor([[1.0, 2.0]])).sum().backward()
    assert layer.weight.grad.tolist() == [[0.0, 0.0]] and layer.bias.grad.tolist() == [0.0]


def test_a_full_backward_hook_sees_a_loss_targets_gradient_as_none():
    loss_fn = mg.nn.MSELoss()
    seen = []
    loss_fn.register_full_backward_hook(lambda m, gi, go: seen.append(
        ([None if g is None else g.tolist() for g in gi], [g.tolist() for g in go])))
    prediction = mg.tensor([1.0, 3.0], requires_grad=True)
    loss_fn(prediction, mg.tensor([0.0, 1.0])).backward()
    assert seen == [([[1.0, 2.0], None], [1.0])]  # d mean((p - t)^2)/dp = p - t


# ----------------------------------------------------------------- removal
def test_removing_a_handle_stops_its_calls():
    model = small_model(mg)
    calls = []
    weight = model[0].weight
    handles = [weight.register_hook(lambda grad: calls.append("hook") or grad * 100),
               weight.register_post_accumulate_grad_hook(lambda w: calls.append("post")),
               model[0].register_full_backward_hook(lambda m, gi, go: calls.append("backward")),
               model[0].register_full_backward_pre_hook(lambda m, go: calls.append("pre")),
               model[0].register_forward_hook(lambda m, args, out: calls.append("forward"))]
    weighted_sum(mg, model(mg.tensor(X))).backward()
    assert calls == ["forward", "pre", "backward", "hook", "post"]
    for handle in handles:
        handle.remove()
    calls.clear()
    model.zero_grad()
    weighted_sum(mg, model(mg.tensor(X))).backward()
    assert calls == []
    plain = small_model(mg)
    weighted_sum(mg, plain(mg.tensor(X))).backward()
    np.testing.assert_array_equal(model[0].weight.grad.numpy(), plain[0].weight.grad.numpy())


# ----------------------------------------------------------------- refusals
def test_a_tensor_that_does_not_require_grad_refuses_hooks():
    for register in ("register_hook", "register_post_accumulate_grad_hook"):
        with pytest.raises(RuntimeError) as error:
            getattr(mg.tensor([1.0]), register)(print)
        assert str(error.value) == ("cannot register a hook on a tensor that doesn't require "
                                    "gradient")


def test_post_accumulate_hooks_are_for_leaves_only():
    y = mg.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError) as error:
        y.register_post_accumulate_grad_hook(print)
    assert str(error.value) == ("post accumulate grad hooks cannot be registered on non-leaf "
                                "tensors (this one was made by Mul)")


def test_a_hook_returning_a_gradient_of_another_shape_is_refused():
    x = mg.tensor([1.0, 2.0], requires_grad=True)

    def bad_hook(grad):
        return mg.zeros(3)

    x.register_hook(bad_hook)
    with pytest.raises(RuntimeError) as error:
        (x * 2).sum().backward()
    assert str(error.value) == ("hook 'bad_hook' returned a gradient of shape (3,), the "
                                "gradient it replaces has shape (2,)")


def test_module_backward_hooks_refuse_what_they_cannot_do():
    layer = mg.nn.Linear(2, 1)
    layer.register_full_backward_hook(lambda m, gi, go: (mg.zeros(1, 2),))
    with pytest.raises(RuntimeError) as error:
        layer(mg.tensor([[1.0, 2.0]])).sum().backward()
    assert str(error.value) == ("Backward hook for Modules where no input requires gradient "
                                "should always return None or None for all gradients.")
    for returned, message in [
            ((mg.zeros(3),), "Linear's backward hook (gradient 0) returned a gradient of shape "
                             "(3,), the gradient it replaces has shape (1, 2)"),
            ((None, None), "Linear's backward hook returned an invalid number of gradients, "
                           "got 2, but expected a tuple of 1")]:
        layer = mg.nn.Linear(2, 1)
        layer.register_full_backward_hook(lambda m, gi, go, returned=returned: returned)
        with pytest.raises(RuntimeError) as error:
            layer(mg.tensor([[1.0, 2.0]], requires_grad=True)).sum().backward()
        assert str(error.value) == message


def test_a_module_with_backward_hooks_takes_one_input_that_requires_grad():
    bilinear = mg.nn.MSELoss()
    bilinear.register_full_backward_hook(lambda m, gi, go: None)
    a, b = mg.ones(2, requires_grad=True), mg.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError) as error:
        bilinear(a, b)
    assert str(error.value) == ("MSELoss has backward hooks and was called with 2 tensors that "
                                "require grad (arguments [0, 1]); minigrad's module backward "
                                "hooks take one (each graph node has one output)")


# ----------------------------------------------------------------- numpy() views
def test_numpy_of_a_tensor_that_requires_grad_is_a_read_only_view():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    view = w.numpy()
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        view[0] = 100.0
    loss.backward()
    assert w.grad.tolist() == [2.0, 4.0]  # 2 w, from the values the graph saved
    assert np.shares_memory(view, w.data) and view.tolist() == [1.0, 2.0]


def test_numpy_of_a_detached_tensor_is_a_writable_view():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    detached = w.detach().numpy()
    detached[0] = 5.0
    assert w.tolist() == [5.0, 2.0]
    constant = mg.tensor([1.0, 2.0])
    constant.numpy()[1] = 7.0
    assert constant.tolist() == [1.0, 7.0]


def test_removing_a_leafs_last_hook_returns_backward_to_its_plain_path():
    from minigrad import autograd

    w = mg.randn(3, requires_grad=True)
    handles = [w.register_hook(lambda g: g), w.register_post_accumulate_grad_hook(print)]
    assert id(w) in autograd._hooked_leaves
    handles[0].remove()
    assert id(w) in autograd._hooked_leaves  # one hook left
    handles[1].remove()
    assert id(w) not in autograd._hooked_leaves
