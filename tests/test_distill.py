"""minigrad.distill: the losses equal PyTorch's and their gradients are right; the Distiller
trains the student and the adapters, never the teacher; bad input is refused clearly."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import distill, nn
from minigrad.data import DataLoader, TensorDataset
from minigrad.models import MLP, ViT
from minigrad.nn import functional as F
from minigrad.optim import SGD
from minigrad.testing import gradcheck
from minigrad.train import evaluate, fit


RNG = np.random.default_rng(0)
N, C = 6, 5


def logits(dtype=np.float64, scale=3.0, n=N, classes=C):
    return (scale * RNG.standard_normal((n, classes))).astype(dtype)


def labels(n=N, classes=C):
    return RNG.integers(0, classes, size=n)


def models(teacher_dropout=0.5):
    mg.manual_seed(0)
    return MLP([12, 16, 16, C], dropout=teacher_dropout), MLP([12, 8, C])


def batches(n=64, batch_size=16):
    x = RNG.standard_normal((n, 12)).astype(np.float32)
    return DataLoader(TensorDataset(x, RNG.integers(0, C, size=n)), batch_size=batch_size,
                      shuffle=True, seed=0)


def hint_distiller(teacher, student, **kwargs):
    """Hint between the second hidden layers (post-ReLU): student 8 units -> teacher 16."""
    hint = distill.Hint("layers.2", "layers.5", distill.hint_adapter((8,), (16,)))
    return distill.Distiller(teacher, student, [distill.KD(T=2, alpha=0.5), hint], **kwargs)


# ------------------------------------------------------------------- losses against PyTorch
def torch_kd_loss(torch, dtype, T, alpha):
    """Fixed student and teacher logits ``s``, ``t`` (in ``dtype``) and labels ``y``, and
    Hinton's loss on them in PyTorch (in float64): ``loss`` and its gradient ``grad`` in s."""
    rng = np.random.default_rng(1)
    inputs = {"s": (3 * rng.standard_normal((N, C))).astype(dtype),
              "t": (3 * rng.standard_normal((N, C))).astype(dtype),
              "y": rng.integers(0, C, size=N)}
    s = torch.tensor(inputs["s"].astype(np.float64), requires_grad=True)
    F_t = torch.nn.functional
    kl = F_t.kl_div(F_t.log_softmax(s / T, dim=1),
                    F_t.softmax(torch.tensor(inputs["t"].astype(np.float64)) / T, dim=1),
                    reduction="batchmean")
    loss = (1 - alpha) * F_t.cross_entropy(s, torch.tensor(inputs["y"])) + alpha * T * T * kl
    loss.backward()
    return inputs | {"loss": loss, "grad": s.grad}


def our_kd_loss(expected, T, alpha):
    student = mg.tensor(expected["s"], requires_grad=True)
    teacher = mg.tensor(expected["t"], requires_grad=True)
    loss = distill.kd_loss(student, teacher, mg.tensor(expected["y"]), T=T, alpha=alpha)
    loss.backward()
    return loss, student, teacher


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0, 20.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9, 1.0])
def test_kd_loss_value_and_gradients_equal_pytorch(T, alpha, torch_reference):
    expected = torch_reference(f"kd_loss-T={T}-alpha={alpha}",
                               lambda torch: torch_kd_loss(torch, np.float64, T, alpha))
    loss, student, teacher = our_kd_loss(expected, T, alpha)
    np.testing.assert_allclose(loss.item(), expected["loss"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(student.grad.numpy(), expected["grad"], rtol=1e-9, atol=1e-12)
    assert teacher.grad is None  # the teacher's logits are a target, never trained


def test_kd_loss_in_float32_is_within_rounding_of_pytorch(torch_reference):
    expected = torch_reference("kd_loss-float32",
                               lambda torch: torch_kd_loss(torch, np.float32, 4.0, 0.7))
    loss, student, _ = our_kd_loss(expected, 4.0, 0.7)
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), expected["loss"], rtol=1e-5)
    np.testing.assert_allclose(student.grad.numpy(), expected["grad"], rtol=1e-4, atol=1e-6)


def torch_attention(torch, x):
    """The authors' code (github.com/szagoruyko/attention-transfer, utils.py)."""
    return torch.nn.functional.normalize(x.pow(2).mean(1).view(x.size(0), -1))


def torch_similarity(torch, s, t):
    """Tung & Mori's loss as PyTorch code."""
    def gram(x):
        flat = x.reshape(x.shape[0], -1)
        return torch.nn.functional.normalize(flat @ flat.t())
    return (gram(s) - gram(t)).pow(2).sum() / s.shape[0] ** 2


@pytest.mark.parametrize("name, shapes", [
    ("logit_mse", ((N, C), (N, C))),
    ("attention 4-D", ((N, 3, 4, 4), (N, 5, 4, 4))),
    ("attention 2-D", ((N, 7), (N, 7))),
    ("similarity", ((N, 3, 2, 2), (N, 9))),
])
def test_response_feature_and_relation_losses_equal_pytorch(name, shapes, torch_reference):
    def compute(torch):
        rng = np.random.default_rng(2)
        s, t = (rng.standard_normal(shape) for shape in shapes)
        ts, tt = torch.tensor(s, requires_grad=True), torch.tensor(t)
        if name == "logit_mse":
            loss = 0.5 * (ts - tt).pow(2).sum(1).mean()
        elif name.startswith("attention"):
            if ts.ndim == 2:  # one channel per position
                ts_map, tt_map = ts[:, None], tt[:, None]
            else:
                ts_map, tt_map = ts, tt
            loss = (torch_attention(torch, ts_map) - torch_attention(torch, tt_map)).pow(2).mean()
        else:
            loss = torch_similarity(torch, ts, tt)
        loss.backward()
        return {"s": s, "t": t, "loss": loss, "grad": ts.grad}

    expected = torch_reference(name.replace(" ", "_"), compute)
    student, teacher = mg.tensor(expected["s"], requires_grad=True), mg.tensor(expected["t"])
    ours = {"logit_mse": distill.logit_mse_loss, "similarity": distill.similarity_preserving_loss
            }.get(name, distill.attention_transfer_loss)(student, teacher)
    ours.backward()
    np.testing.assert_allclose(ours.item(), expected["loss"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(student.grad.numpy(), expected["grad"], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("loss", [
    lambda s, t: distill.kd_loss(s, t, mg.tensor(np.arange(4) % 3), T=3.0, alpha=0.6),
    lambda s, t: distill.attention_transfer_loss(s.reshape(4, 1, 3), t.reshape(4, 1, 3)),
    lambda s, t: distill.similarity_preserving_loss(s, t),
], ids=["kd", "attention", "similarity"])
def test_loss_gradients_equal_finite_differences(loss):
    s = mg.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    t = mg.tensor(RNG.standard_normal((4, 3)))
    assert gradcheck(lambda student: loss(student, t), [s])


def test_soft_targets_at_high_temperature_match_logits_hinton_limit():
    """T^2 KL -> ||s - t||^2 / (2 C) for zero-mean logits (Hinton et al. 2015, section 2.1)."""
    s, t = logits(scale=0.5), logits(scale=0.5)
    s, t = s - s.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
    soft = distill.soft_target_loss(mg.tensor(s), mg.tensor(t), T=1000.0).item()
    mse = distill.logit_mse_loss(mg.tensor(s), mg.tensor(t)).item()
    assert soft == pytest.approx(mse / C, rel=1e-3)


def test_attention_transfer_is_zero_for_proportional_features_of_any_width():
    """Only where activity is, not how much nor in how many channels."""
    x = RNG.standard_normal((N, 2, 3, 3))
    wide = np.concatenate([x, x, x], axis=1) * 4.0  # 6 channels, same map up to a factor
    assert distill.attention_transfer_loss(mg.tensor(x), mg.tensor(wide)).item() < 1e-14


# ------------------------------------------------------------------- the Distiller
def test_distiller_loss_is_kd_loss_and_forward_returns_the_student_logits():
    teacher, student = models()
    distiller = distill.Distiller(teacher, student, [distill.KD(T=3.0, alpha=0.8)])
    x, y = mg.randn(N, 12), mg.tensor(labels())
    out = distiller(x)
    np.testing.assert_array_equal(out.numpy(), student(x).numpy())
    _, loss = distiller.step(distiller, x, y)
    with mg.no_grad():
        expected = distill.kd_loss(student(x), teacher(x), y, T=3.0, alpha=0.8)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert sum(distiller.last_terms.values()) == pytest.approx(loss.item(), rel=1e-6)
    assert set(distiller.last_terms) == {"kd_ce", "kd_kl"}


def test_hint_gradients_reach_the_adapter_and_the_student_never_the_teacher():
    teacher, student = models()
    distiller = hint_distiller(teacher, student)
    hint_only = distill.Distiller(teacher, MLP([12, 8, C]), [
        distill.Hint("layers.2", "layers.5", distill.hint_adapter((8,), (16,)))])
    for model in (distiller, hint_only):
        x = mg.randn(N, 12)
        _, loss = model.step(model, x, mg.tensor(labels()))
        loss.backward()
        adapter = model.terms[-1].adapter
        assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0
                   for p in adapter.parameters())
        first_layer = model.student.layers[1].weight  # reached through the adapter
        assert first_layer.grad is not None and np.abs(first_layer.grad.numpy()).sum() > 0
    for p in teacher.parameters():
        assert p.grad is None and not p.requires_grad
    names = [name for name, _ in distiller.named_parameters()]
    assert names == ["student.layers.1.weight", "student.layers.1.bias",
                     "student.layers.3.weight", "student.layers.3.bias",
                     "terms.1.adapter.weight", "terms.1.adapter.bias"]
    assert not any(key.startswith("teacher") for key in distiller.state_dict())


def test_teacher_is_unchanged_after_distillation_steps_and_stays_in_eval_mode():
    teacher, student = models()
    before = {k: v.numpy().copy() for k, v in teacher.state_dict().items()}
    student_before = student.layers[1].weight.numpy().copy()
    distiller = hint_distiller(teacher, student)
    optimizer = SGD(distiller.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    fit(distiller, batches(), optimizer, distiller.step, epochs=2, progress=False)
    assert not teacher.training and distiller.training
    for key, value in teacher.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)
    assert not np.allclose(student.layers[1].weight.numpy(), student_before)
    # Dropout is off in the teacher: the same input gives the same logits every time.
    x = mg.randn(4, 12)
    np.testing.assert_array_equal(distiller.teacher_logits(x).numpy(),
                                  distiller.teacher_logits(x).numpy())


def test_fit_with_the_distillation_step_is_the_loop_written_out():
    """One epoch of fit with ``distiller.step`` gives the losses and weights of the loop by
    hand: the student with its graph, the teacher in eval mode under no_grad, then kd_loss on
    both logits plus hint_loss on the hooked layers' outputs."""
    x, y = RNG.standard_normal((64, 12)).astype(np.float32), RNG.integers(0, C, size=64)

    def loader():  # the same batches in the same order each time
        return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)

    teacher, student = models()
    distiller = hint_distiller(teacher, student)
    history = fit(distiller, loader(), SGD(distiller.parameters(), lr=0.1, momentum=0.9),
                  distiller.step, epochs=1, progress=False)

    teacher, student = models()  # the same initial weights, and the same adapter
    adapter = distill.hint_adapter((8,), (16,))
    teacher.eval()
    features = {}
    student.layers[2].register_forward_hook(lambda m, args, out: features.update(student=out))
    teacher.layers[5].register_forward_hook(lambda m, args, out: features.update(teacher=out))
    optimizer = SGD([*student.parameters(), *adapter.parameters()], lr=0.1, momentum=0.9)
    losses = []
    for xb, yb in loader():
        s = student(xb)
        with mg.no_grad():
            t = teacher(xb)
        loss = (distill.kd_loss(s, t, yb, T=2, alpha=0.5)
                + distill.hint_loss(features["student"], features["teacher"], adapter))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert [step["loss"] for step in history.steps] == pytest.approx(losses, rel=1e-6)
    for ours, theirs in ((distiller.student, student), (distiller.terms[1].adapter, adapter)):
        for (name, value), by_hand in zip(ours.state_dict().items(),
                                          theirs.state_dict().values()):
            np.testing.assert_allclose(value.numpy(), by_hand.numpy(), rtol=1e-6, atol=1e-7,
                                       err_msg=name)


def test_every_term_is_logged_per_step_and_per_epoch():
    teacher, student = models()
    distiller = hint_distiller(teacher, student)
    optimizer = SGD(distiller.parameters(), lr=0.05)
    history = fit(distiller, batches(), optimizer, distiller.step, epochs=2,
                  val_loader=batches(), callbacks=[distill.DistillationLog(distiller)],
                  progress=False)
    assert len(history.steps) == 8 and len(history.epochs) == 2
    for step in history.steps:
        assert step["kd_ce"] + step["kd_kl"] + step["hint"] == pytest.approx(step["loss"],
                                                                           rel=1e-5)
    for record in history.epochs:  # batches of equal size: the plain mean of the steps
        steps = [s for s in history.steps if s["epoch"] == record["epoch"]]
        for key in ("kd_ce", "kd_kl", "hint"):
            assert record[key] == pytest.approx(np.mean([s[key] for s in steps]), rel=1e-6)
        assert record["kd_ce"] + record["kd_kl"] + record["hint"] == pytest.approx(
            record["train_loss"], rel=1e-5)
    assert len(history.series("kd_kl")) == 2


def test_teacher_logit_cache_gives_the_same_logits_and_skips_the_teacher():
    teacher, student = models()
    calls = []
    teacher.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    cached = distill.Distiller(teacher, student, [distill.KD()], cache_teacher_logits=True)
    loader = batches()
    first = {}  # row bytes -> the logits the teacher gave that row in epoch 1
    for x, _ in loader:
        logits = cached.teacher_logits(x).numpy()
        with mg.no_grad():
            # Same batch, same kernels: the very same computation, so bit-exact.
            np.testing.assert_array_equal(logits, teacher(x).numpy())
        first.update(zip((row.tobytes() for row in x.numpy()), logits.copy()))
    for x, _ in loader:  # shuffled anew: every row sits in another batch than in epoch 1
        logits = cached.teacher_logits(x).numpy()
        # The cache returns exactly what the teacher gave those rows when they were cached.
        np.testing.assert_array_equal(logits, np.stack([first[row.tobytes()]
                                                        for row in x.numpy()]))
        with mg.no_grad():
            fresh = teacher(x).numpy()
        # A fresh pass computes each row inside another batch, and float32 BLAS results
        # depend on a row's place in the batch in the last bits: equal to float32 rounding
        # of 16-term dot products, not bit-exact. That rounding is relative to the terms,
        # not the result (a logit near 0 was off by 2e-5 of itself on AVX2 kernels), hence
        # an atol of 1e-5 of the largest logit.
        np.testing.assert_allclose(logits, fresh, rtol=1e-5, atol=1e-5 * np.abs(fresh).max())
    # Epoch 1 runs the teacher for each batch (plus our check); epoch 2, shuffled anew, only
    # the checks run it: every row is found in the cache.
    assert cached.cache_misses == 4 and cached.cache_hits == 4 and len(cached.cache) == 64
    assert len(calls) == 4 + 8


def test_distillers_of_one_teacher_can_share_a_cache():
    teacher, student = models()
    shared = {}
    first = distill.Distiller(teacher, student, [distill.KD()], cache_teacher_logits=shared)
    x = mg.randn(8, 12)
    first.teacher_logits(x)
    second = distill.Distiller(teacher, MLP([12, 8, C]), [distill.KD()],
                               cache_teacher_logits=shared)
    second.teacher_logits(x)
    assert len(shared) == 8 and (first.cache_misses, second.cache_hits) == (1, 1)
    with pytest.raises(TypeError, match="True, False or a dict"):
        distill.Distiller(teacher, student, [distill.KD()], cache_teacher_logits="yes")


def test_born_again_student_has_the_teachers_architecture_and_fresh_weights():
    teacher, _ = models()
    hinted = hint_distiller(teacher, MLP([12, 8, C]))  # a hook on the teacher's layers.5
    distiller = distill.Distiller(teacher, None, [distill.KD(T=1.0, alpha=1.0)])
    student = distiller.student
    assert student is not teacher and student.training and not teacher.training
    theirs, ours = teacher.state_dict(), student.state_dict()
    assert list(ours) == list(theirs)
    for key in ours:
        assert ours[key].shape == theirs[key].shape
        assert not np.allclose(ours[key].numpy(), theirs[key].numpy()), key
    assert all(p.requires_grad for p in student.parameters())
    assert not student.layers[5]._forward_hooks  # the hint's hook stayed on the teacher
    assert hinted.teacher.layers[5]._forward_hooks


def test_batch_norm_layers_are_reset_in_a_born_again_student():
    teacher = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    teacher(mg.randn(8, 4))  # training mode: the running statistics move
    student = distill.born_again_student(teacher)
    np.testing.assert_array_equal(student[1].running_mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(student[1].running_var.numpy(), np.ones(3))
    assert int(student[1].num_batches_tracked.item()) == 0


def test_evaluate_sees_the_student():
    teacher, student = models()
    distiller = distill.Distiller(teacher, student, [distill.KD()])
    loader = batches()
    assert evaluate(distiller, loader)["accuracy"] == evaluate(student, loader)["accuracy"]
    assert "loss" in evaluate(distiller, loader, distiller.step)


def test_hint_adapter_is_a_linear_or_a_1x1_convolution():
    assert isinstance(distill.hint_adapter((8,), (16,)), nn.Linear)
    conv = distill.hint_adapter((4, 7, 7), (16, 7, 7))
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
    assert conv(mg.randn(2, 4, 7, 7)).shape == (2, 16, 7, 7)
    with pytest.raises(ValueError, match="cannot map"):
        distill.hint_adapter((4, 7, 7), (16, 5, 5))


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("T", [0, -1.0, math.nan, math.inf, "4", True])
def test_a_temperature_that_is_not_positive_is_refused(T):
    with pytest.raises(ValueError, match="temperature T must be a positive number"):
        distill.kd_loss(mg.tensor(logits()), mg.tensor(logits()), mg.tensor(labels()), T=T)
    with pytest.raises(ValueError, match="temperature"):
        distill.KD(T=T)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, math.nan, None])
def test_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        distill.kd_loss(mg.tensor(logits()), mg.tensor(logits()), mg.tensor(labels()),
                        alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        distill.KD(alpha=alpha)


def test_a_class_count_mismatch_is_refused():
    with pytest.raises(ValueError, match="the student has 5 classes and the teacher 4"):
        distill.kd_loss(mg.tensor(logits()), mg.tensor(logits(classes=4)),
                        mg.tensor(labels()))
    with pytest.raises(ValueError, match="classes"):
        distill.logit_mse_loss(mg.tensor(logits()), mg.tensor(logits(classes=4)))
    teacher, _ = models()
    distiller = distill.Distiller(teacher, MLP([12, 8, 4]), [distill.KD()])
    with pytest.raises(ValueError, match="the student has 4 classes and the teacher 5"):
        distiller.step(distiller, mg.randn(N, 12), mg.tensor(labels()))


@pytest.mark.parametrize("student_layer, teacher_layer, role, missing", [
    ("layers.9", "layers.5", "student", "layers.9"), ("layers.2", "fc2", "teacher", "fc2"),
    ("", "layers.5", "student", "")])
def test_a_hooked_layer_that_does_not_exist_is_refused(student_layer, teacher_layer, role,
                                                       missing):
    teacher, student = models()
    hint = distill.Hint(student_layer, teacher_layer, distill.hint_adapter((8,), (16,)))
    with pytest.raises(ValueError, match=rf"the {role} \(MLP\) has no layer named "
                                         rf"'{missing}'; its layers are: layers, layers\.0"):
        distill.Distiller(teacher, student, [hint])


def test_other_misuse_is_refused_with_a_clear_error():
    teacher, student = models()
    with pytest.raises(ValueError, match="non-empty list of DistillationTerm"):
        distill.Distiller(teacher, student, [])
    with pytest.raises(ValueError, match="same name"):
        distill.Distiller(teacher, student, [distill.KD(), distill.KD(T=2)])
    hint = distill.Hint("layers.2", "layers.5", distill.hint_adapter((8,), (16,)))
    with pytest.raises(ValueError, match="cache holds teacher logits only"):
        distill.Distiller(teacher, student, [hint], cache_teacher_logits=True)
    with pytest.raises(ValueError, match="pairs must be"):
        distill.AttentionTransfer([])
    with pytest.raises(ValueError, match="attention_transfer_loss: student feature"):
        distill.attention_transfer_loss(mg.randn(N, 2, 4, 4), mg.randn(N, 2, 3, 3))
    with pytest.raises(ValueError, match="the adapter maps"):
        distill.hint_loss(mg.randn(N, 8), mg.randn(N, 16), nn.Linear(8, 12))


def torch_deit_loss(torch, distillation, alpha, T):
    F_t = torch.nn.functional
    rng = np.random.default_rng(7)  # its own generator: the inputs cannot depend on test order
    inputs = {k: 3.0 * rng.standard_normal((N, C)) for k in "cdt"} | {"y": rng.integers(0, C, N)}
    c, d = (torch.tensor(inputs[k], requires_grad=True) for k in "cd")
    t = torch.tensor(inputs["t"])
    if distillation == "hard":
        teacher_term = F_t.cross_entropy(d, t.argmax(dim=1))
    else:
        teacher_term = T * T * F_t.kl_div(F_t.log_softmax(d / T, dim=1), F_t.softmax(t / T, dim=1),
                                          reduction="batchmean")
    loss = (1 - alpha) * F_t.cross_entropy(c, torch.tensor(inputs["y"])) + alpha * teacher_term
    loss.backward()
    return inputs | {"loss": loss, "grad_c": c.grad, "grad_d": d.grad}


@pytest.mark.parametrize("distillation, alpha, T", [("hard", 0.5, 1.0), ("hard", 0.2, 1.0),
                                                     ("soft", 0.5, 3.0)])
def test_deit_loss_value_and_both_heads_gradients_equal_pytorch(distillation, alpha, T,
                                                                 torch_reference):
    expected = torch_reference(f"deit_loss-{distillation}-alpha={alpha}-T={T}",
                               lambda torch: torch_deit_loss(torch, distillation, alpha, T))
    c, d, t = (mg.tensor(expected[k], requires_grad=True) for k in "cdt")
    loss = distill.deit_loss(c, d, t, mg.tensor(expected["y"]), distillation, alpha, T)
    loss.backward()
    np.testing.assert_allclose(loss.item(), expected["loss"], rtol=1e-10)
    np.testing.assert_allclose(c.grad.numpy(), expected["grad_c"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d.grad.numpy(), expected["grad_d"], rtol=1e-9, atol=1e-12)
    assert t.grad is None


def test_deit_hard_loss_trains_the_distillation_head_on_the_teachers_decisions():
    """alpha = 1: the class head gets no gradient, and a distillation head that predicts the
    teacher's argmax with certainty has no loss, whatever the labels say."""
    teacher = mg.tensor([[0.0, 5.0, 1.0], [2.0, 0.0, 0.0]])
    cls_logits = mg.tensor(logits(n=2, classes=3), requires_grad=True)
    dist_logits = mg.tensor([[-50.0, 50.0, -50.0], [50.0, -50.0, -50.0]], requires_grad=True)
    loss = distill.deit_loss(cls_logits, dist_logits, teacher, mg.tensor([2, 2]), alpha=1.0)
    loss.backward()
    assert loss.item() < 1e-30
    np.testing.assert_array_equal(cls_logits.grad.numpy(), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="distillation must be 'hard' or 'soft', got 'kl'"):
        distill.deit_loss(cls_logits, dist_logits, teacher, mg.tensor([2, 2]), "kl")


def test_deit_step_trains_both_heads_against_a_frozen_teacher():
    """One fit epoch of a tiny DeiT student: the step's loss is deit_loss of the two heads
    with the teacher's logits, the metrics see their mean, the teacher is never changed,
    and in eval mode (evaluate) the loss is the cross-entropy of the mean head."""
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    student = ViT(dim=16, depth=1, heads=2, mlp_dim=16, distillation=True)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    before = {name: p.numpy().copy() for name, p in teacher.named_parameters()}
    step = distill.DeiTStep(teacher)
    outputs, loss = step(student.train(), mg.tensor(x), mg.tensor(y))
    cls_logits, dist_logits = student(mg.tensor(x))
    with mg.no_grad():
        expected = distill.deit_loss(cls_logits, dist_logits, teacher(mg.tensor(x)),
                                     mg.tensor(y)).item()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(outputs.numpy(), ((cls_logits + dist_logits) / 2).numpy(),
                               rtol=1e-6)
    history = fit(student, DataLoader(TensorDataset(x, y), batch_size=4),
                  SGD(student.parameters(), lr=0.1), step, epochs=2, progress=False)
    assert history.epochs[1]["train_loss"] < history.epochs[0]["train_loss"]
    assert student.head_dist.weight.grad is not None
    for name, p in teacher.named_parameters():
        np.testing.assert_array_equal(p.numpy(), before[name])
        assert p.grad is None
    result = evaluate(student, DataLoader(TensorDataset(x, y), batch_size=8), step)
    with mg.no_grad():
        mean_logits = student.eval()(mg.tensor(x))
        assert result["loss"] == pytest.approx(F.cross_entropy(mean_logits, mg.tensor(y)).item(),
                                               rel=1e-6)
    with pytest.raises(ValueError, match="distillation must be 'hard' or 'soft', got 'kl'"):
        distill.DeiTStep(teacher, "kl")
