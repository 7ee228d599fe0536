"""nn.utils: gradient clipping against PyTorch (every norm type, the returned norm, the clipped
gradients, skipped parameters, non-finite norms), and the L1/L2 penalties: values, gradients
(sign(w) and 2w, and by finite differences) and the equivalence of lambda * l2 in the loss
with SGD's weight_decay = 2 * lambda."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn.utils import (clip_grad_norm_, clip_grad_value_, l1_penalty, l2_penalty,
                               vector_norm)
from minigrad.optim import SGD
from minigrad.testing import gradcheck

SHAPES = [(3, 4), (5,), (2, 2, 2), (1,)]


def parameters_with_grads(lib, seed=0, scale=1.0, without_grad=(2,), bad=None):
    """Parameters of ``lib`` (minigrad or torch) with random gradients (the ones at
    ``without_grad`` have grad None); ``bad`` replaces the first gradient entry."""
    rng = np.random.default_rng(seed)
    params = []
    for i, shape in enumerate(SHAPES):
        p = lib.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
        if i not in without_grad:
            g = (scale * rng.standard_normal(shape)).astype(np.float32)
            if bad is not None and i == 0:
                g.flat[0] = bad
            p.grad = lib.tensor(g)
        params.append(p)
    return params


def clipped_by_torch(clip, bad=None):
    """``clip(torch, parameters)``'s result (``total``, when it returns one) and the gradients
    after it (``grad<i>``, for the parameters that have one)."""
    def compute(torch):
        theirs = parameters_with_grads(torch, bad=bad)
        total = clip(torch, theirs)
        results = {f"grad{i}": q.grad for i, q in enumerate(theirs) if q.grad is not None}
        return results if total is None else results | {"total": total}
    return compute


def assert_same_grads(ours, expected):
    for i, p in enumerate(ours):
        assert (p.grad is None) == (f"grad{i}" not in expected)
        if p.grad is not None:
            assert p.grad.dtype == np.float32
            np.testing.assert_allclose(p.grad.numpy(), expected[f"grad{i}"], rtol=1e-6,
                                       atol=1e-7)


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("norm_type", [1.0, 2.0, math.inf, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clips / leaves alone
def test_clip_grad_norm_matches_torch(norm_type, max_norm, torch_reference):
    expected = torch_reference(f"clip_grad_norm-{norm_type}-{max_norm}", clipped_by_torch(
        lambda torch, q: torch.nn.utils.clip_grad_norm_(q, max_norm, norm_type=norm_type)))
    ours = parameters_with_grads(mg)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    assert isinstance(total, mg.Tensor) and total.shape == ()
    assert total.item() == pytest.approx(expected["total"].item(), rel=1e-6)
    assert_same_grads(ours, expected)


def test_total_norm_is_the_norm_of_all_gradients_concatenated_and_clipped_to_max_norm():
    ours = parameters_with_grads(mg, scale=10.0)
    flat = np.concatenate([p.grad.numpy().ravel() for p in ours if p.grad is not None])
    for p in (1.0, 2.0, 3.0, math.inf):
        ours = parameters_with_grads(mg, scale=10.0)
        total = clip_grad_norm_(iter(ours), 2.0, norm_type=p)  # any iterable
        assert total.item() == pytest.approx(np.linalg.norm(flat, ord=p), rel=1e-5)
        clipped = np.concatenate([q.grad.numpy().ravel() for q in ours if q.grad is not None])
        assert np.linalg.norm(clipped, ord=p) == pytest.approx(2.0, rel=1e-5)
        np.testing.assert_allclose(clipped / np.linalg.norm(clipped), flat / np.linalg.norm(flat),
                                   rtol=1e-5)  # the direction is kept


def test_clip_grad_value_matches_torch(torch_reference):
    expected = torch_reference("clip_grad_value", clipped_by_torch(
        lambda torch, q: torch.nn.utils.clip_grad_value_(q, 0.3)))
    ours = parameters_with_grads(mg)
    assert clip_grad_value_(ours, 0.3) is None
    assert_same_grads(ours, expected)
    assert max(np.abs(p.grad.numpy()).max() for p in ours if p.grad is not None) <= 0.3


def test_a_single_tensor_and_missing_gradients():
    w = mg.tensor([3.0, -4.0], requires_grad=True)
    assert clip_grad_norm_(w, 1.0).item() == 0.0  # no gradient yet: nothing to clip
    clip_grad_value_(w, 1.0)
    assert w.grad is None
    w.grad = mg.tensor([3.0, -4.0])
    assert clip_grad_norm_(w, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(w.grad.numpy(), [0.6, -0.8], rtol=1e-5)
    assert clip_grad_norm_([], 1.0).item() == 0.0


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_nonfinite_norm_raises_or_scales_like_torch(bad, torch_reference):
    expected = torch_reference(f"nonfinite-{bad}", clipped_by_torch(
        lambda torch, q: torch.nn.utils.clip_grad_norm_(q, 1.0), bad=bad))
    ours = parameters_with_grads(mg, bad=bad)
    with pytest.raises(RuntimeError, match=f"norm of order 2.0 of the gradients is {bad}"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert ours[0].grad.data[0, 0] != 0  # nothing was changed before the error
    with np.errstate(invalid="ignore"):  # inf * 0 = nan is what PyTorch does too
        total = clip_grad_norm_(ours, 1.0)
    np.testing.assert_equal(total.item(), expected["total"].item())
    for i, p in enumerate(ours):
        if p.grad is not None:
            np.testing.assert_array_equal(p.grad.numpy(), expected[f"grad{i}"])


def test_vector_norm_conventions():
    a = np.array([[0.0, -3.0], [4.0, 0.0]], dtype=np.float32)
    assert vector_norm(a, 2.0) == pytest.approx(5.0)
    assert vector_norm(a, 1.0) == 7.0 and vector_norm(a, math.inf) == 4.0
    assert vector_norm(a, -math.inf) == 0.0 and vector_norm(a, 0.0) == 2.0
    assert vector_norm(a, 2.0).dtype == np.float32
    assert vector_norm(np.zeros((0, 3)), math.inf) == 0.0


# ----------------------------------------------------------------------------- penalties
def two_weights(dtype=np.float32):
    rng = np.random.default_rng(1)
    return [mg.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
            for shape in [(3, 4), (4,)]]


def test_penalty_values():
    weights = two_weights()
    values = [w.numpy() for w in weights]
    assert l1_penalty(weights).item() == pytest.approx(sum(np.abs(v).sum() for v in values),
                                                       rel=1e-6)
    assert l2_penalty(weights).item() == pytest.approx(sum((v ** 2).sum() for v in values),
                                                       rel=1e-6)
    assert l2_penalty(weights[1]).item() == pytest.approx((values[1] ** 2).sum(), rel=1e-6)
    assert l1_penalty([]).item() == 0.0


@pytest.mark.parametrize("penalty, gradient", [(l1_penalty, np.sign),
                                                (l2_penalty, lambda w: 2 * w)])
def test_penalty_gradients_are_sign_w_and_2w(penalty, gradient):
    weights = two_weights()
    weights[0].data[0, 0] = 0.0  # |w| has gradient 0 at 0, like PyTorch's abs
    penalty(weights).backward()
    for w in weights:
        np.testing.assert_allclose(w.grad.numpy(), gradient(w.numpy()), rtol=1e-6)
    assert weights[0].grad.numpy()[0, 0] == 0.0


@pytest.mark.parametrize("penalty", [l1_penalty, l2_penalty])
def test_penalties_pass_gradcheck(penalty):
    weights = two_weights(np.float64)
    for w in weights:  # keep finite differences away from the kink of |w| at 0
        w.data[np.abs(w.data) < 0.1] = 0.5
    assert gradcheck(lambda *ws: penalty(ws), weights)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_l2_in_the_loss_equals_sgd_weight_decay_of_2_lambda(momentum):
    lam, rng = 0.05, np.random.default_rng(2)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal(16)
    start = rng.standard_normal(3)

    def trajectory(lam_in_loss, weight_decay):
        w = mg.tensor(start.copy(), requires_grad=True)
        optimizer = SGD([w], lr=0.1, momentum=momentum, weight_decay=weight_decay)
        points = []
        for _ in range(20):
            loss = ((mg.tensor(x) @ w - mg.tensor(y)) ** 2).mean()
            if lam_in_loss:
                loss = loss + lam_in_loss * l2_penalty([w])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            points.append(w.numpy().copy())
        return np.array(points)

    penalized, decayed = trajectory(lam, 0.0), trajectory(0.0, 2 * lam)
    np.testing.assert_allclose(penalized, decayed, rtol=1e-12, atol=1e-14)
    assert not np.allclose(penalized, trajectory(0.0, 0.0))  # the penalty does something
