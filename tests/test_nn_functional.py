"""nn.functional: gradcheck and PyTorch parity (through helpers.op_tests) for convolution,
pooling, linear, batch norm and every loss; plus their error messages."""

import numpy as np
import pytest
from hypothesis import strategies as st

import minigrad as mg
from minigrad.nn import functional as F
from helpers import OpCase, away_from_zero, import_torch, op_tests

# PyTorch warns that kl_div's 'mean' is not the true KL, and that padding="same" with an even
# kernel copies the input; we test that they match anyway.
pytestmark = [pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning"),
              pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")]


def torch_F():
    return import_torch().nn.functional


@st.composite
def conv_geometry(draw, n=2, channels=3, side=7):
    """Input, weight (and bias) shapes with stride, padding and dilation that fit together:
    up to ``n`` samples, ``channels`` in and out channels, inputs up to ``side`` (at least 5,
    the widest dilated kernel) high and wide."""
    n, c, o = (draw(st.integers(1, n)), draw(st.integers(1, channels)),
               draw(st.integers(1, channels)))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), side))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), side))
    return [(n, c, h, w), (o, c, kh, kw), (o,)], {"stride": stride, "padding": padding,
                                                   "dilation": dilation}


@st.composite
def pool_geometry(draw, dilation=True):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    h = draw(st.integers(d[0] * (k[0] - 1) + 1, 7))
    w = draw(st.integers(d[1] * (k[1] - 1) + 1, 7))
    kwargs = {"kernel_size": k, "stride": stride, "padding": padding}
    if dilation:
        kwargs["dilation"] = d
    return [(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)], kwargs


@st.composite
def classification(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(2, 5))
    targets = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return [(n, c)], {"target": targets}


def torch_target(kwargs):
    return {**kwargs, "target": import_torch().tensor(kwargs["target"])}


def pair_of_same_shape(data):
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    return [shape, shape], {"reduction": data.draw(st.sampled_from(["mean", "sum", "none"]))}


def batch_norm_case(data):
    shape = data.draw(st.sampled_from([(4, 3), (3, 2, 5), (2, 3, 4, 4)]))
    return [shape, shape[1:2], shape[1:2]], {}


def torch_batch_norm(x, weight, bias):
    torch = import_torch()
    running_mean, running_var = torch.zeros(x.shape[1], dtype=x.dtype), torch.ones(
        x.shape[1], dtype=x.dtype)
    return torch_F().batch_norm(x, running_mean, running_var, weight, bias, training=True)


def ours_batch_norm(x, weight, bias):
    return F.batch_norm(x, mg.zeros(x.shape[1], dtype=x.dtype),
                        mg.ones(x.shape[1], dtype=x.dtype), weight, bias, training=True)


def example(input_shapes, **kwargs):
    """A fixed example: the input shapes, and stride, padding, ... as keyword arguments."""
    return list(input_shapes), kwargs


CLASSIFICATION_EXAMPLES = [([(4, 3)], {"target": np.array([0, 2, 1, 2])}),
                           ([(1, 5)], {"target": np.array([4])}),
                           ([(3, 2)], {"target": np.array([1, 0, 1])})]
PAIR_EXAMPLES = [([(3,), (3,)], {"reduction": "mean"}), ([(2, 3), (2, 3)], {"reduction": "sum"}),
                 ([(2, 1, 4), (2, 1, 4)], {"reduction": "none"})]


def conv2d_case(name, geometry, **options):
    return OpCase(name, lambda data: data.draw(geometry),
                  lambda x, w, b, **kw: F.conv2d(x, w, b, **kw),
                  lambda x, w, b, **kw: torch_F().conv2d(x, w, b, **kw), **options)



def from_examples(name, fn, torch_fn, examples, **options):
    """An OpCase whose Hypothesis draws pick among its fixed ``examples`` (new values each
    time): small geometries chosen by hand, so the gradchecks stay fast."""
    return OpCase(name, lambda data: data.draw(st.sampled_from(examples)), fn, torch_fn,
                  examples=examples, **options)


def unpool_after_pool(x, kernel_size, stride, padding, output_size=None):
    return F.max_unpool2d(*F.max_pool2d(x, kernel_size, stride, padding, return_indices=True),
                          kernel_size, stride, padding, output_size)


def torch_unpool_after_pool(x, kernel_size, stride, padding, output_size=None):
    out, indices = torch_F().max_pool2d(x, kernel_size, stride, padding, return_indices=True)
    return torch_F().max_unpool2d(out, indices, kernel_size, stride, padding, output_size)


def with_positional(fn, *names):
    """``fn`` taking the keyword arguments ``names`` as positional ones (their order in
    PyTorch's signature), so a case checks that order too."""
    return lambda *tensors, **kw: fn(*tensors, *(kw.pop(n) for n in names), **kw)


LAYER_CASES = [
    from_examples("conv1d", lambda x, w, b, **kw: F.conv1d(x, w, b, **kw),
                  lambda x, w, b, **kw: torch_F().conv1d(x, w, b, **kw), [
                      example([(2, 3, 7), (2, 3, 3), (2,)], stride=1, padding=0, dilation=1),
                      example([(1, 2, 8), (3, 2, 2), (3,)], stride=2, padding=1, dilation=2),
                      example([(2, 1, 5), (2, 1, 4), (2,)], padding="same"),
                      example([(1, 2, 6), (2, 2, 3), (2,)], padding="same", dilation=2),
                      example([(1, 2, 4), (2, 2, 3), (2,)], padding="valid", stride=(2,))]),
    from_examples("conv2d_padding_strings", lambda x, w, b, **kw: F.conv2d(x, w, b, **kw),
                  lambda x, w, b, **kw: torch_F().conv2d(x, w, b, **kw), [
                      example([(1, 2, 5, 4), (2, 2, 2, 3), (2,)], padding="same",
                              dilation=(1, 2)),
                      example([(1, 1, 4, 4), (2, 1, 3, 3), (2,)], padding="same"),
                      example([(1, 1, 5, 4), (1, 1, 3, 2), (1,)], padding="valid", stride=2)]),
    from_examples("conv_transpose2d", with_positional(
        F.conv_transpose2d, "stride", "padding", "output_padding", "groups", "dilation"),
        with_positional(lambda *a, **kw: torch_F().conv_transpose2d(*a, **kw),
                        "stride", "padding", "output_padding", "groups", "dilation"), [
            example([(2, 3, 3, 4), (3, 2, 3, 2), (2,)], stride=1, padding=0, output_padding=0,
                    groups=1, dilation=1),
            example([(1, 2, 3, 3), (2, 3, 3, 3), (3,)], stride=2, padding=1, output_padding=1,
                    groups=1, dilation=1),
            example([(1, 2, 3, 2), (2, 2, 2, 3), (2,)], stride=(2, 3), padding=(0, 1),
                    output_padding=(1, 2), groups=1, dilation=(1, 2)),
            # output_padding 1 >= stride 1, allowed below the dilation 2
            example([(1, 1, 3, 3), (1, 2, 3, 2), (2,)], stride=1, padding=1, output_padding=1,
                    groups=1, dilation=2),
            example([(2, 1, 2, 2), (1, 1, 2, 2), (1,)], stride=3, padding=0, output_padding=2,
                    groups=1, dilation=1)]),
    from_examples("conv_transpose1d", lambda x, w, b, **kw: F.conv_transpose1d(x, w, b, **kw),
                  lambda x, w, b, **kw: torch_F().conv_transpose1d(x, w, b, **kw), [
                      example([(2, 3, 4), (3, 2, 3), (2,)], stride=2, padding=1,
                              output_padding=1),
                      example([(1, 2, 3), (2, 3, 2), (3,)], dilation=2)]),
    from_examples("max_pool2d_ceil_mode", lambda x, **kw: F.max_pool2d(x, ceil_mode=True, **kw),
                  lambda x, **kw: torch_F().max_pool2d(x, ceil_mode=True, **kw), [
                      example([(2, 2, 5, 5)], kernel_size=2, stride=2),
                      example([(1, 2, 6, 7)], kernel_size=3, stride=2, padding=1),
                      example([(1, 1, 5, 6)], kernel_size=(2, 3), stride=(3, 2), padding=(1, 1),
                              dilation=(2, 1))]),
    from_examples("max_pool2d_values_at_indices",
                  lambda x, **kw: F.max_pool2d(x, return_indices=True, **kw)[0],
                  lambda x, **kw: torch_F().max_pool2d(x, return_indices=True, **kw)[0], [
                      example([(2, 2, 5, 5)], kernel_size=3, stride=1, padding=1),
                      example([(1, 2, 5, 6)], kernel_size=2, stride=2, ceil_mode=True)]),
    from_examples("max_pool1d", lambda x, **kw: F.max_pool1d(x, **kw),
                  lambda x, **kw: torch_F().max_pool1d(x, **kw), [
                      example([(2, 3, 7)], kernel_size=2),
                      example([(1, 2, 8)], kernel_size=3, stride=2, padding=1, ceil_mode=True),
                      example([(1, 2, 7)], kernel_size=2, stride=1, dilation=3)]),
    from_examples("avg_pool2d_options", lambda x, **kw: F.avg_pool2d(x, **kw),
                  lambda x, **kw: torch_F().avg_pool2d(x, **kw), [
                      example([(2, 2, 5, 5)], kernel_size=2, ceil_mode=True),
                      example([(1, 2, 6, 5)], kernel_size=3, stride=2, padding=1,
                              count_include_pad=False),
                      example([(1, 2, 6, 5)], kernel_size=3, stride=2, padding=1, ceil_mode=True,
                              count_include_pad=False),
                      # counted padding, but never past it: the last windows divide by less
                      example([(1, 1, 5, 5)], kernel_size=(2, 3), stride=2, padding=(1, 1),
                              ceil_mode=True),
                      example([(1, 2, 4, 5)], kernel_size=2, stride=1, divisor_override=3)]),
    from_examples("avg_pool1d", lambda x, **kw: F.avg_pool1d(x, **kw),
                  lambda x, **kw: torch_F().avg_pool1d(x, **kw), [
                      example([(2, 3, 7)], kernel_size=3, stride=2, padding=1,
                              count_include_pad=False, ceil_mode=True),
                      example([(1, 2, 5)], kernel_size=2)]),
    from_examples("adaptive_avg_pool2d_sizes", lambda x, **kw: F.adaptive_avg_pool2d(x, **kw),
                  lambda x, **kw: torch_F().adaptive_avg_pool2d(x, **kw), [
                      example([(2, 3, 5, 4)], output_size=(2, 3)),
                      example([(1, 2, 7, 6)], output_size=(3, 4)),  # overlapping windows
                      example([(1, 2, 4, 5)], output_size=(4, None)),
                      example([(2, 5, 4)], output_size=7)]),  # (C, H, W), larger than the input
    from_examples("interpolate_nearest", lambda x, **kw: F.interpolate(x, **kw),
                  lambda x, **kw: torch_F().interpolate(x, **kw), [
                      example([(2, 2, 5, 4)], size=(3, 7)),
                      example([(1, 2, 3, 2)], scale_factor=2),
                      example([(1, 1, 5, 4)], scale_factor=(1.5, 0.6)),
                      # out = in and out = 2 in: PyTorch's 2-D kernel copies, whatever the factor
                      example([(1, 1, 5, 4)], scale_factor=(1.1, 2.1)),
                      example([(2, 2, 5)], size=7),
                      example([(1, 2, 6)], scale_factor=0.5),
                      example([(1, 2, 4)], scale_factor=1.7)]),
    from_examples("interpolate_bilinear",
                  lambda x, **kw: F.interpolate(x, mode="bilinear", **kw),
                  lambda x, **kw: torch_F().interpolate(x, mode="bilinear", **kw), [
                      example([(2, 2, 5, 4)], size=(3, 7), align_corners=False),
                      example([(2, 2, 5, 4)], size=(3, 7), align_corners=True),
                      example([(1, 1, 4, 4)], scale_factor=(1.5, 0.6)),
                      example([(1, 1, 5, 4)], scale_factor=(1.1, 2.1), align_corners=False),
                      example([(1, 2, 3, 3)], size=(1, 5), align_corners=True)]),
    from_examples("max_unpool2d_after_max_pool2d", unpool_after_pool, torch_unpool_after_pool, [
        example([(2, 2, 4, 6)], kernel_size=2, stride=2, padding=0),
        # Windows that overlap would put one input in two places' gradients (PyTorch's too):
        # the unpooling's gradient is a gather, so an input that wins k windows gets k times.
        example([(1, 2, 5, 5)], kernel_size=2, stride=3, padding=1, output_size=(5, 5)),
        example([(1, 1, 5, 4)], kernel_size=2, stride=2, padding=0, output_size=(5, 4))]),
]

CASES = [
    # conv2d's gradcheck perturbs every input and weight entry: seconds at the full geometry
    # (slow), so the fast subset checks the same geometry options on one small sample.
    conv2d_case("conv2d", conv_geometry(), gradcheck_marks=(pytest.mark.slow,), examples=[
        example([(2, 3, 7, 7), (2, 3, 3, 3), (2,)], stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1)),
        example([(1, 2, 6, 5), (3, 2, 2, 3), (3,)], stride=(2, 1), padding=(1, 2),
                 dilation=(1, 2)),
        example([(2, 1, 5, 7), (1, 1, 3, 1), (1,)], stride=(2, 2), padding=(2, 0),
                 dilation=(2, 1))]),
    conv2d_case("conv2d_small", conv_geometry(n=1, channels=2, side=5), examples=[
        example([(1, 2, 5, 5), (2, 2, 3, 3), (2,)], stride=(1, 2), padding=(1, 0),
                 dilation=(1, 1)),
        example([(1, 1, 5, 4), (2, 1, 2, 2), (2,)], stride=(2, 1), padding=(0, 1),
                 dilation=(2, 2))]),
    # Max pooling has a kink wherever two window entries tie; normal draws never tie.
    OpCase("max_pool2d", lambda data: data.draw(pool_geometry()),
           lambda x, **kw: F.max_pool2d(x, **kw), lambda x, **kw: torch_F().max_pool2d(x, **kw),
           examples=[example([(2, 3, 7, 7)], kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
                              dilation=(1, 1)),
                     example([(1, 2, 6, 5)], kernel_size=(2, 3), stride=(1, 3), padding=(0, 1),
                              dilation=(2, 1)),
                     example([(2, 1, 4, 4)], kernel_size=(1, 1), stride=(1, 1), padding=(0, 0),
                              dilation=(1, 1))]),
    OpCase("avg_pool2d", lambda data: data.draw(pool_geometry(dilation=False)),
           lambda x, **kw: F.avg_pool2d(x, **kw), lambda x, **kw: torch_F().avg_pool2d(x, **kw),
           examples=[example([(2, 3, 6, 6)], kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
                     example([(1, 2, 7, 5)], kernel_size=(3, 2), stride=(2, 1),
                              padding=(1, 1))]),
    OpCase("adaptive_avg_pool2d", lambda data: ([(2, 3, 4, 5)], {}),
           F.adaptive_avg_pool2d, lambda x: torch_F().adaptive_avg_pool2d(x, 1),
           examples=[example([(2, 3, 4, 5)])]),
    OpCase("linear", lambda data: ([(data.draw(st.integers(1, 4)), 3), (2, 3), (2,)], {}),
           F.linear, lambda x, w, b: torch_F().linear(x, w, b),
           examples=[example([(1, 3), (2, 3), (2,)]), example([(4, 3), (2, 3), (2,)])]),
    OpCase("batch_norm_training", batch_norm_case, ours_batch_norm, torch_batch_norm,
           examples=[example([shape, shape[1:2], shape[1:2]])
                     for shape in [(4, 3), (3, 2, 5), (2, 3, 4, 4)]]),
    OpCase("cross_entropy", lambda data: data.draw(classification()),
           lambda x, target: F.cross_entropy(x, target),
           lambda x, target: torch_F().cross_entropy(x, import_torch().tensor(target)),
           examples=CLASSIFICATION_EXAMPLES),
    OpCase("cross_entropy_label_smoothing", lambda data: data.draw(classification()),
           lambda x, target: F.cross_entropy(x, target, reduction="sum", label_smoothing=0.1),
           lambda x, target: torch_F().cross_entropy(x, import_torch().tensor(target),
                                                     reduction="sum", label_smoothing=0.1),
           examples=CLASSIFICATION_EXAMPLES),
    OpCase("nll_loss", lambda data: data.draw(classification()),
           lambda x, target: F.nll_loss(F.log_softmax(x, 1), target, reduction="none"),
           lambda x, target: torch_F().nll_loss(x.log_softmax(1), import_torch().tensor(target),
                                                reduction="none"),
           examples=CLASSIFICATION_EXAMPLES),
    OpCase("mse_loss", pair_of_same_shape, F.mse_loss, lambda a, b, **kw: torch_F().mse_loss(
        a, b, **kw), examples=PAIR_EXAMPLES),
    OpCase("l1_loss", pair_of_same_shape, F.l1_loss,
           lambda a, b, **kw: torch_F().l1_loss(a, b, **kw),
           domain=lambda i, x: away_from_zero(x) * (1 if i == 0 else 0.01),
           examples=PAIR_EXAMPLES),
    OpCase("bce_with_logits", pair_of_same_shape, F.binary_cross_entropy_with_logits,
           lambda a, b, **kw: torch_F().binary_cross_entropy_with_logits(a, b, **kw),
           domain=lambda i, x: 3 * x if i == 0 else 1 / (1 + np.exp(-x)),
           examples=PAIR_EXAMPLES),
    OpCase("kl_div", lambda data: ([(3, 4), (3, 4)], {"reduction": data.draw(
        st.sampled_from(["batchmean", "sum", "mean", "none"]))}),
        lambda a, b, reduction: F.kl_div(F.log_softmax(a, 1), F.softmax(b, 1), reduction),
        lambda a, b, reduction: torch_F().kl_div(a.log_softmax(1), b.softmax(1), reduction=reduction),
        examples=[example([(3, 4), (3, 4)], reduction=reduction)
                  for reduction in ["batchmean", "sum", "mean", "none"]]),
    OpCase("kl_div_log_target", lambda data: ([(3, 4), (3, 4)], {}),
           lambda a, b: F.kl_div(F.log_softmax(a, 1), F.log_softmax(b, 1), "batchmean", True),
           lambda a, b: torch_F().kl_div(a.log_softmax(1), b.log_softmax(1),
                                         reduction="batchmean", log_target=True),
           examples=[example([(3, 4), (3, 4)])]),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES + LAYER_CASES)


def loss_and_gradient(lib, loss_fn, logits, target):
    """``loss_fn(x, target)`` and its gradient with respect to x, in minigrad or PyTorch."""
    x = lib.tensor(logits, requires_grad=True)
    loss = loss_fn(x, lib.tensor(target))
    loss.backward()
    return {"loss": loss.item(), "grad": x.grad.numpy()}


def test_kl_div_with_zero_probabilities_matches_torch(torch_reference):
    log_q = np.log(np.array([[0.2, 0.3, 0.5]]))
    p = np.array([[0.0, 0.4, 0.6]])
    expected = torch_reference("kl_div_zero_probabilities", lambda torch: loss_and_gradient(
        torch, lambda x, t: torch_F().kl_div(x, t, reduction="batchmean"), log_q, p))
    ours = loss_and_gradient(mg, lambda x, t: F.kl_div(x, t, "batchmean"), log_q, p)
    assert ours["loss"] == pytest.approx(expected["loss"], rel=1e-12)
    np.testing.assert_allclose(ours["grad"], expected["grad"], rtol=1e-12)


def test_dropout_scales_survivors_in_training_and_is_identity_in_eval():
    mg.manual_seed(0)
    x = mg.ones(100_000)
    dropped = F.dropout(x, p=0.3, training=True).numpy()
    kept = dropped != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(dropped[kept], 1 / 0.7, rtol=1e-6)
    assert F.dropout(x, p=0.3, training=False) is x
    assert (F.dropout(x, p=1.0).numpy() == 0).all()
    with pytest.raises(ValueError, match="dropout: probability must be in"):
        F.dropout(x, p=1.5)


def test_loss_and_layer_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"cross_entropy: expected input \(N, C\) and target "
                                         r"\(N,\), got input \(2, 3\) and target \(3,\)"):
        F.cross_entropy(mg.zeros(2, 3), mg.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\), got 0..3"):
        F.cross_entropy(mg.zeros(2, 3), mg.tensor([0, 3]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(mg.zeros(2, 3), mg.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(2,\) and target shape "
                                         r"\(3,\) differ"):
        F.mse_loss(mg.zeros(2), mg.zeros(3))
    with pytest.raises(ValueError, match=r"conv2d: input \(1, 2, 5, 5\).*weight "
                                         r"\(4, 3, 3, 3\)"):
        F.conv2d(mg.zeros(1, 2, 5, 5), mg.zeros(4, 3, 3, 3))
    with pytest.raises(ValueError, match="does not fit an input of size 2"):
        F.conv2d(mg.zeros(1, 1, 2, 2), mg.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"linear: input \(2, 5\) has 5 features"):
        F.linear(mg.zeros(2, 5), mg.zeros(3, 4))
    with pytest.raises(ValueError, match="reduction must be"):
        F.mse_loss(mg.zeros(2), mg.zeros(2), reduction="avg")


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_cross_entropy_equals_the_composite(label_smoothing, reduction):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 5))
    target = mg.tensor(rng.integers(0, 5, size=6))
    results = []
    for loss_fn in (F.cross_entropy, F.cross_entropy_composite):
        x = mg.tensor(logits, requires_grad=True)
        loss = loss_fn(x, target, reduction=reduction, label_smoothing=label_smoothing)
        loss.sum().backward()
        results.append((loss.numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-14)


def test_fused_linear_equals_the_composite():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in [(2, 3, 4), (5, 4), (5,)]]
    results = []
    for fn in (F.linear, lambda x, w, b: x @ w.transpose(0, 1) + b):
        tensors = [mg.tensor(a, requires_grad=True) for a in arrays]
        out = fn(*tensors)
        out.backward(mg.tensor(np.ones(out.shape)))
        results.append([out.numpy()] + [t.grad.numpy() for t in tensors])
    for ours, composite in zip(*results):
        np.testing.assert_allclose(ours, composite, rtol=1e-12)


def test_bce_and_cross_entropy_at_edge_values_match_torch(torch_reference):
    logits, targets = np.zeros(3), np.array([0.0, 1.0, 0.3])
    scores = np.array([[0.0, -np.inf, 1.0]])

    def compute(torch):
        bce = loss_and_gradient(torch, torch_F().binary_cross_entropy_with_logits, logits,
                                targets)
        return {"bce_grad": bce["grad"],
                "cross_entropy": torch_F().cross_entropy(torch.tensor(scores),
                                                         torch.tensor([0]))}

    expected = torch_reference("bce_and_cross_entropy_edges", compute)
    ours = loss_and_gradient(mg, F.binary_cross_entropy_with_logits, logits, targets)
    np.testing.assert_allclose(ours["grad"], expected["bce_grad"], rtol=1e-12)
    ours = F.cross_entropy(mg.tensor(scores), mg.tensor([0]))
    assert ours.item() == pytest.approx(expected["cross_entropy"].item(), rel=1e-12)


def test_window_and_bias_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"max_pool2d: input \(1, 1, 2, 2\) with kernel "
                                         r"\(3, 3\)"):
        F.max_pool2d(mg.zeros(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match=r"linear: bias \(4,\) does not match weight \(3, 2\)"):
        F.linear(mg.zeros(5, 2), mg.zeros(3, 2), mg.zeros(4))


INDEX_CASES = [("max_pool2d", (2, 2, 6, 7), dict(kernel_size=2)),
               ("max_pool2d", (2, 2, 6, 7), dict(kernel_size=3, stride=2, padding=1,
                                                 ceil_mode=True)),
               ("max_pool2d", (1, 2, 6, 7), dict(kernel_size=(2, 3), stride=(1, 2),
                                                 dilation=(2, 1), ceil_mode=True)),
               ("max_pool1d", (2, 3, 9), dict(kernel_size=3, stride=2, padding=1,
                                              ceil_mode=True))]


@pytest.mark.parametrize("i", range(len(INDEX_CASES)))
def test_max_pool_indices_match_torch(i, torch_reference):
    name, shape, kwargs = INDEX_CASES[i]
    x = np.random.default_rng(i).standard_normal(shape)
    expected = torch_reference(f"{name}_indices_{i}", lambda torch: dict(zip(
        ("out", "indices"),
        getattr(torch_F(), name)(torch.tensor(x), return_indices=True, **kwargs))))
    out, indices = getattr(F, name)(mg.tensor(x, requires_grad=True), return_indices=True,
                                    **kwargs)
    assert indices.dtype == expected["indices"].dtype == np.int64
    assert not indices.requires_grad and out.requires_grad
    np.testing.assert_array_equal(indices.numpy(), expected["indices"])
    np.testing.assert_array_equal(out.numpy(), expected["out"])


def test_max_unpool2d_puts_values_back_as_torch(torch_reference):
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6))

    def compute(torch):
        out, indices = torch_F().max_pool2d(torch.tensor(x), 2, return_indices=True)
        return {"default": torch_F().max_unpool2d(out, indices, 2),
                "output_size": torch_F().max_unpool2d(out, indices, 2, output_size=(5, 7))}

    expected = torch_reference("max_unpool2d", compute)
    out, indices = F.max_pool2d(mg.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(F.max_unpool2d(out, indices, 2).numpy(), expected["default"])
    unpooled = F.max_unpool2d(out, indices, 2, output_size=(2, 2, 5, 7))
    np.testing.assert_array_equal(unpooled.numpy(), expected["output_size"])


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)>: the transposed convolution is the
    gradient of the convolution with respect to its input."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    geometry = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    y = rng.standard_normal(F.conv2d(mg.tensor(x), mg.tensor(w), **geometry).shape)
    back = F.conv_transpose2d(mg.tensor(y), mg.tensor(w), output_padding=(0, 0), **geometry)
    assert back.shape == x.shape
    forward = (F.conv2d(mg.tensor(x), mg.tensor(w), **geometry).numpy() * y).sum()
    assert forward == pytest.approx((x * back.numpy()).sum(), rel=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: F.linear(mg.zeros(2, 3, dtype=np.float64), mg.zeros(4, 3)),
     r"linear: input float64, weight float32 must all have one dtype; convert the input to "
     r"the weight's dtype \(x\.float\(\)\) or the model to the input's \(model\.double\(\)\)"),
    (lambda: F.linear(mg.zeros(2, 3), mg.zeros(4, 3), mg.zeros(4, dtype=np.float64)),
     r"linear: input float32, weight float32, bias float64 must all have one dtype"),
    (lambda: F.conv2d(mg.zeros(1, 1, 4, 4, dtype=np.float64), mg.zeros(1, 1, 3, 3)),
     r"conv2d: input float64, weight float32 .*x\.float\(\).*model\.double\(\)"),
    (lambda: F.conv1d(mg.zeros(1, 1, 4, dtype=np.float16), mg.zeros(1, 1, 3)),
     r"conv1d: input float16, weight float32 .*x\.float\(\).*model\.half\(\)"),
    (lambda: F.conv_transpose2d(mg.zeros(1, 1, 4, 4), mg.zeros(1, 1, 3, 3, dtype=np.float64)),
     r"conv_transpose2d: input float32, weight float64 .*x\.double\(\).*model\.float\(\)"),
    (lambda: F.conv2d(mg.zeros(1, 1, 4, 4, dtype=np.int64), mg.zeros(1, 1, 3, 3)),
     r"conv2d: input int64, weight float32 must all have one dtype; convert the input to the "
     r"weight's dtype \(x\.float\(\)\)$"),
])
def test_layers_refuse_inputs_of_another_dtype(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_linear_layer_refuses_a_float64_batch():
    with pytest.raises(TypeError, match=r"linear: input float64, weight float32"):
        mg.nn.Linear(3, 2)(mg.tensor(np.ones((4, 3))))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(mg.zeros(1, 2, 4, 4), mg.zeros(2, 1, 3, 3), groups=0), ValueError,
     r"conv2d: groups must be a positive int, got 0"),
    (lambda: F.conv2d(mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3), stride=2, padding="same"),
     ValueError, r"conv2d: padding='same' needs stride 1, got stride \(2, 2\)"),
    (lambda: F.conv1d(mg.zeros(1, 1, 5), mg.zeros(1, 1, 3), padding="full"), ValueError,
     r"conv1d: padding must be an int, a tuple, 'valid' or 'same', got 'full'"),
    (lambda: F.conv1d(mg.zeros(1, 2, 5), mg.zeros(1, 3, 3)), ValueError,
     r"conv1d: input \(1, 2, 5\) and weight \(1, 3, 3\) \(O, C/groups, K\): groups 1 needs "
     r"input channels 3\*groups = 3, got 2"),
    (lambda: F.conv1d(mg.zeros(1, 1, 2), mg.zeros(1, 1, 3)), ValueError,
     r"conv1d: input \(1, 1, 2\) with kernel \(3,\).*does not fit an input of size 2"),
    (lambda: F.conv1d(mg.zeros(1, 1, 5), mg.zeros(1, 1, 3), stride=(1, 2)), ValueError,
     r"conv1d: expected an int or a 1-tuple, got \(1, 2\)"),
    (lambda: F.conv_transpose2d(mg.zeros(1, 1, 3, 3), mg.zeros(1, 1, 3, 3), stride=2,
                                output_padding=2), ValueError,
     r"conv_transpose2d: output_padding \(2, 2\) must be smaller than the stride \(2, 2\) or "
     r"the dilation \(1, 1\)"),
    (lambda: F.conv_transpose1d(mg.zeros(1, 2, 3), mg.zeros(3, 1, 2)), ValueError,
     r"conv_transpose1d: input \(1, 2, 3\) \(N, C_in, \.\.\.\) and weight \(3, 1, 2\)"),
    (lambda: F.conv_transpose2d(mg.zeros(1, 1, 1, 1), mg.zeros(1, 1, 1, 1), padding=1),
     ValueError, r"conv_transpose2d: .* gives an empty output \(-1, -1\)"),
    (lambda: F.max_pool2d(mg.zeros(1, 1, 5, 5), 2, padding=2), ValueError,
     r"max_pool2d: padding \(2, 2\) must be at most half of kernel_size \(2, 2\)"),
    (lambda: F.avg_pool1d(mg.zeros(1, 1, 5), 3, padding=2), ValueError,
     r"avg_pool1d: padding \(2,\) must be at most half of kernel_size \(3,\)"),
    (lambda: F.max_pool1d(mg.zeros(1, 5), 2), ValueError,
     r"max_pool1d: expected an \(N, C, L\) input, got shape \(1, 5\)"),
    (lambda: F.avg_pool2d(mg.zeros(1, 1, 4, 4), 2, divisor_override=0), ValueError,
     "avg_pool2d: divisor_override must not be 0"),
    (lambda: F.max_unpool2d(mg.ones(1, 1, 2, 2), mg.tensor([[[[0, 1], [2, 16]]]]), 2),
     ValueError, r"max_unpool2d: indices 0\.\.16 are outside the output plane \(4, 4\)"),
    (lambda: F.max_unpool2d(mg.ones(1, 1, 2, 2), mg.zeros(1, 1, 2, 2), 2), TypeError,
     "max_unpool2d: indices must be integers, got float32"),
    (lambda: F.max_unpool2d(mg.ones(1, 1, 2, 2), mg.tensor([[[[0, 1], [2, 3]]]]), 2,
                            output_size=(7, 4)), ValueError,
     r"max_unpool2d: output_size \(7, 4\) must end with \(H, W\) each within a stride \(2, 2\) "
     r"of \(4, 4\)"),
    (lambda: F.interpolate(mg.zeros(1, 1, 4, 4), size=2, scale_factor=2), ValueError,
     "interpolate: give exactly one of size and scale_factor"),
    (lambda: F.interpolate(mg.zeros(1, 1, 4), size=2, mode="bilinear"), ValueError,
     r"interpolate: mode 'bilinear' takes 4-D inputs, got shape \(1, 1, 4\)"),
    (lambda: F.interpolate(mg.zeros(1, 1, 4, 4), size=2, align_corners=True), ValueError,
     "interpolate: align_corners can only be set with mode='bilinear'"),
    (lambda: F.interpolate(mg.zeros(1, 1, 4, 4), size=2, mode="bicubic"), ValueError,
     "interpolate: mode must be 'nearest' or 'bilinear', got 'bicubic'"),
    (lambda: F.interpolate(mg.zeros(1, 1, 4, 4), scale_factor=(2, 2, 2)), ValueError,
     r"interpolate: scale_factor \(2, 2, 2\) must have one entry per spatial dim \(2\)"),
    (lambda: F.interpolate(mg.zeros(1, 1, 4, 4), scale_factor=0.2), ValueError,
     r"interpolate: the output size \(0, 0\) of an input of spatial size \(4, 4\)"),
    (lambda: F.adaptive_avg_pool2d(mg.zeros(1, 1, 4, 4), (0, 2)), ValueError,
     r"adaptive_avg_pool2d: output_size \(0, 2\) must be positive"),
])
def test_convolution_and_pooling_errors_name_what_is_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_max_pool_of_an_integer_tensor_with_ceil_mode_pads_with_the_dtypes_minimum():
    x = np.arange(25).reshape(1, 1, 5, 5)
    out = F.max_pool2d(mg.tensor(x), 2, ceil_mode=True)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy()[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
