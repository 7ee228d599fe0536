"""Losses and distances of nn.functional and their Modules (nn.loss): gradcheck, PyTorch parity
and float16 for every option (helpers.op_tests), the fused cross-entropy against its
composite, edge values, the Modules' buffers, bad input, and the namespace ``dir(F)``."""

import numpy as np
import pytest
from hypothesis import strategies as st

import minigrad as mg
from minigrad.autograd import topological_order
from minigrad.nn import functional as F
from minigrad.nn import loss as losses
from helpers import OpCase, away_from_zero, import_torch, op_tests, positive

REDUCTIONS = ["mean", "sum", "none"]


def torch_F():
    return import_torch().nn.functional


def torch_kwargs(kwargs):
    """The keyword arguments with their arrays (targets, class weights) as torch tensors."""
    torch = import_torch()
    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


def loss_case(name, function, draw, examples, **options):
    """An OpCase calling ``F.<function>`` and ``torch.nn.functional.<function>`` alike."""
    return OpCase(name, draw, lambda *xs, **kw: getattr(F, function)(*xs, **kw),
                  lambda *xs, **kw: getattr(torch_F(), function)(*xs, **torch_kwargs(kw)),
                  examples=examples, **options)


# ------------------------------------------------------------------ class-index targets
@st.composite
def class_scores(draw, weighted=False, ignore=False):
    """Scores (N, C) or (N, C, d) with class indices; with ``ignore``, ignore_index is class 1
    (the first target is class 0, so some target counts); with ``weighted``, a class weight."""
    n, c = draw(st.integers(1, 4), label="n"), draw(st.integers(2, 4), label="c")
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=1), label="extra"))
    target_shape = (n,) + extra
    target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=int(np.prod(target_shape)),
                                    max_size=int(np.prod(target_shape))), label="target"))
    target[0] = 0
    kwargs = {"target": target.reshape(target_shape),
              "reduction": draw(st.sampled_from(REDUCTIONS), label="reduction"),
              "label_smoothing": draw(st.sampled_from([0.0, 0.2]), label="label_smoothing")}
    if weighted:
        kwargs["weight"] = np.linspace(0.5, 2.0, c)
    if ignore:
        kwargs["ignore_index"] = 1
    return [(n, c) + extra], kwargs


def nll_kwargs(kwargs):
    return {k: v for k, v in kwargs.items() if k != "label_smoothing"}


def class_example(shape, target, **kwargs):
    return [shape], {"target": np.array(target), **kwargs}


WEIGHT3, WEIGHT4 = np.array([0.2, 1.0, 3.0]), np.array([1.0, 0.5, 2.0, 0.0])
PLAIN_EXAMPLES = [
    class_example((4, 3), [0, 2, 1, 2]),
    class_example((3,), 2),  # one unbatched sample: input (C,), target ()
    class_example((2, 3, 2, 2), [[[0, 1], [2, 2]], [[1, 0], [0, 2]]], reduction="sum"),
    class_example((3, 4, 2), [[0, 3], [1, 1], [2, 0]], reduction="none", label_smoothing=0.3),
    class_example((0, 3), np.zeros(0, dtype=np.int64), reduction="sum"),
    class_example((5, 2), [1, 0, 0, 1, 1], label_smoothing=0.1),
]
WEIGHTED_EXAMPLES = [
    class_example((4, 3), [0, 2, -100, 2], weight=WEIGHT3),
    class_example((4, 3), [0, 2, -100, 2], reduction="sum", label_smoothing=0.2),
    class_example((4, 3), [0, 2, 1, 1], weight=WEIGHT3, ignore_index=1, label_smoothing=0.1),
    class_example((3,), 1, weight=WEIGHT3, reduction="none", label_smoothing=0.4),
    class_example((2, 4, 3), [[0, 3, 1], [3, 2, -100]], weight=WEIGHT4, label_smoothing=0.2),
    class_example((2, 4, 3), [[0, 3, 1], [3, 2, 2]], weight=WEIGHT4, ignore_index=3,
                  reduction="none"),
]


def softmax_domain(i, x):
    """Input 1 as class probabilities (positive, summing to 1 along the class dim)."""
    if i != 1:
        return x
    e = np.exp(x)
    return e / e.sum(axis=min(1, x.ndim - 1), keepdims=True)


@st.composite
def probability_targets(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(2, 4))) + tuple(
        draw(st.lists(st.integers(1, 2), max_size=1)))
    kwargs = {"reduction": draw(st.sampled_from(REDUCTIONS)),
              "label_smoothing": draw(st.sampled_from([0.0, 0.3]))}
    if draw(st.booleans()):
        kwargs["weight"] = np.linspace(0.5, 2.0, shape[1])
    return [shape, shape], kwargs


PROBABILITY_EXAMPLES = [
    ([(4, 3), (4, 3)], {}),
    ([(3,), (3,)], {"weight": WEIGHT3, "reduction": "none"}),
    ([(2, 3, 2), (2, 3, 2)], {"label_smoothing": 0.2, "weight": WEIGHT3}),
    ([(2, 4, 2, 2), (2, 4, 2, 2)], {"reduction": "sum", "weight": WEIGHT4}),
]


# ------------------------------------------------------------------ elementwise losses
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def signs(x):
    return np.where(x >= 0, 1.0, -1.0)


@st.composite
def same_shapes(draw, count=2, **options):
    """``count`` inputs of one shape, a reduction, and one of each option's values."""
    shape = draw(st.lists(st.integers(1, 4), max_size=3).map(tuple), label="shape")
    kwargs = {"reduction": draw(st.sampled_from(REDUCTIONS), label="reduction")}
    kwargs.update({key: draw(st.sampled_from(values), label=key)
                   for key, values in options.items()})
    return [shape] * count, kwargs


def pair_examples(count=2, **options):
    """Fixed examples: a 0-d, a vector, a matrix and a 3-d input, each reduction, and the
    options' values in turn."""
    shapes = [(), (4,), (2, 3), (2, 1, 3)]
    option_sets = [dict(zip(options, values)) for values in zip(*options.values())] or [{}]
    return [([shape] * count, {"reduction": REDUCTIONS[i % 3], **option_sets[i % len(option_sets)]})
            for i, shape in enumerate(shapes)]


def bce_domain(i, x):
    return sigmoid(x) if i < 2 else positive(x)


def ranking_domain(i, x):
    return signs(x) if i == 2 else x


BCE_WEIGHTED = [([(2, 3), (2, 3), (3,)], {}), ([(4,), (4,), (4,)], {"reduction": "none"}),
                ([(2, 1, 3), (2, 1, 3), (2, 1, 1)], {"reduction": "sum"})]
LOGITS_WEIGHTED = [([(2, 3), (2, 3), (2, 3), (3,)], {}),
                   ([(4, 2), (4, 2), (1, 2), (2,)], {"reduction": "sum"}),
                   ([(5,), (5,), (), (5,)], {"reduction": "none"})]


def weighted_inputs(weights):
    """A draw of scores and targets (N, C) with ``weights`` more inputs of shape (C,)."""
    def draw(data):
        n, c = data.draw(st.integers(1, 3), label="n"), data.draw(st.integers(1, 4), label="c")
        return ([(n, c), (n, c)] + [(c,)] * weights,
                {"reduction": data.draw(st.sampled_from(REDUCTIONS), label="reduction")})
    return draw


def nll_draw(data):
    shapes, kwargs = data.draw(class_scores(weighted=True, ignore=True), label="scores")
    return shapes, nll_kwargs(kwargs)


# ------------------------------------------------------------------ distances
@st.composite
def vectors_along(draw, count=2):
    """``count`` inputs (N, D) or (D,) of one shape (no keyword arguments)."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    return [shape] * count, {}


PAIR_SIGNS = np.array([1, -1, -1, 1])  # similar and dissimilar pairs


def distance_domain(i, x):
    return away_from_zero(x) * (1 + i)


CASES = [
    loss_case("cross_entropy", "cross_entropy", lambda data: data.draw(class_scores()),
              PLAIN_EXAMPLES),
    loss_case("cross_entropy_weight_ignore", "cross_entropy",
              lambda data: data.draw(class_scores(weighted=True, ignore=True)),
              WEIGHTED_EXAMPLES),
    loss_case("cross_entropy_probabilities", "cross_entropy",
              lambda data: data.draw(probability_targets()), PROBABILITY_EXAMPLES,
              domain=softmax_domain),
    loss_case("nll_loss", "nll_loss", nll_draw,
              [(shapes, nll_kwargs(kw)) for shapes, kw in PLAIN_EXAMPLES[:4] + WEIGHTED_EXAMPLES]),
    loss_case("binary_cross_entropy", "binary_cross_entropy",
              lambda data: data.draw(same_shapes()), pair_examples(), domain=bce_domain),
    loss_case("binary_cross_entropy_weight", "binary_cross_entropy",
              weighted_inputs(1), BCE_WEIGHTED, domain=bce_domain,
              no_grad_inputs=(2,)),
    OpCase("bce_with_logits_weights", weighted_inputs(2),
           lambda x, y, w, pw, **kw: F.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw,
                                                                         **kw),
           lambda x, y, w, pw, **kw: torch_F().binary_cross_entropy_with_logits(
               x, y, w, pos_weight=pw, **kw), examples=LOGITS_WEIGHTED,
              domain=lambda i, x: 3 * x if i == 0 else (sigmoid(x) if i == 1 else positive(x)),
              no_grad_inputs=(2, 3)),
    loss_case("smooth_l1_loss", "smooth_l1_loss",
              lambda data: data.draw(same_shapes(beta=[1.0, 0.5, 0.0])),
              pair_examples(beta=[1.0, 0.5, 0.0]), domain=lambda i, x: 2 * x),
    loss_case("huber_loss", "huber_loss", lambda data: data.draw(same_shapes(delta=[1.0, 0.3])),
              pair_examples(delta=[1.0, 0.3]), domain=lambda i, x: 2 * x),
    loss_case("soft_margin_loss", "soft_margin_loss", lambda data: data.draw(same_shapes()),
              pair_examples(), domain=lambda i, x: signs(x) if i == 1 else x,
              no_grad_inputs=(1,)),  # PyTorch has no gradient for its target
    loss_case("margin_ranking_loss", "margin_ranking_loss",
              lambda data: data.draw(same_shapes(3, margin=[0.0, 0.5])),
              pair_examples(3, margin=[0.0, 0.5]), domain=ranking_domain, no_grad_inputs=(2,)),
    loss_case("cosine_similarity", "cosine_similarity",
              lambda data: ([(3, 4), (3, 4)], {"dim": data.draw(st.sampled_from([0, 1, -1]))}),
              [([(3, 4), (3, 4)], {}), ([(2, 1, 4), (3, 4)], {"dim": -1}),
               ([(5,), (5,)], {"dim": 0}), ([(2, 3, 2), (2, 3, 2)], {"dim": 1, "eps": 1e-6})],
              domain=distance_domain),
    loss_case("pairwise_distance", "pairwise_distance",
              lambda data: (data.draw(vectors_along())[0],
                            {"p": data.draw(st.sampled_from([1.0, 2.0, 3.0, float("inf")])),
                             "keepdim": data.draw(st.booleans())}),
              [([(3, 4), (3, 4)], {}), ([(3, 4), (4,)], {"p": 1.0}), ([(5,), (5,)], {"p": 3.0}),
               ([(2, 3), (2, 3)], {"p": float("inf"), "keepdim": True})],
              domain=distance_domain),
    loss_case("normalize", "normalize",
              lambda data: ([(3, 4)], {"p": data.draw(st.sampled_from([1.0, 2.0, 3.0])),
                                       "dim": data.draw(st.sampled_from([0, 1, -1]))}),
              [([(3, 4)], {}), ([(2, 3, 4)], {"dim": 0, "p": 1.0}), ([(5,)], {"dim": 0}),
               ([(2, 3)], {"dim": -1, "p": 3.0})],
              domain=lambda i, x: away_from_zero(x)),
    loss_case("cosine_embedding_loss", "cosine_embedding_loss",
              lambda data: data.draw(same_shapes(margin=[0.0, -0.5]).map(
                  lambda drawn: ([(4, 3), (4, 3)], {**drawn[1], "target": PAIR_SIGNS}))),
              [([(4, 3), (4, 3)], {"target": PAIR_SIGNS}),
               ([(4, 3), (4, 3)], {"target": PAIR_SIGNS, "margin": -0.5, "reduction": "none"}),
               ([(5,), (5,)], {"target": np.array(-1), "margin": -0.9, "reduction": "sum"})]),
    loss_case("triplet_margin_loss", "triplet_margin_loss",
              lambda data: (data.draw(vectors_along(3))[0],
                            {"swap": data.draw(st.booleans()),
                             "p": data.draw(st.sampled_from([1.0, 2.0])),
                             "margin": data.draw(st.sampled_from([1.0, 3.0]))}),
              [([(4, 3)] * 3, {}), ([(4, 3)] * 3, {"swap": True, "margin": 3.0}),
               ([(5,)] * 3, {"p": 1.0, "margin": 3.0, "reduction": "none"})],
              domain=distance_domain),
]

test_gradcheck, test_matches_torch, test_float16 = op_tests(CASES)


# ------------------------------------------------------------------ cross-entropy paths
@pytest.mark.parametrize("shape, target", [((6, 5), [0, 4, 1, 1, 3, 2]), ((4,), 3),
                                           ((2, 3, 2, 2), [[[0, 1], [2, 2]], [[1, 0], [0, 2]]])])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_fused_cross_entropy_equals_the_composite(shape, target, label_smoothing, reduction):
    scores = np.random.default_rng(0).standard_normal(shape)
    results = []
    for loss_fn in (F.cross_entropy, F.cross_entropy_composite):
        x = mg.tensor(scores, requires_grad=True)
        loss = loss_fn(x, mg.tensor(target), reduction=reduction,
                       label_smoothing=label_smoothing)
        loss.backward(mg.ones_like(loss))
        results.append((loss.numpy(), x.grad.numpy()))
    (fused, fused_grad), (composite, composite_grad) = results
    np.testing.assert_allclose(fused, composite, rtol=1e-12)
    np.testing.assert_allclose(fused_grad, composite_grad, rtol=1e-10, atol=1e-14)


def graph_ops(tensor):
    """The names of the ops in the graph that produced ``tensor``."""
    return {type(node).__name__ for node in topological_order(tensor.grad_fn)}


@pytest.mark.parametrize("shape, target, options, fused", [
    ((3, 4), [0, 1, 3], {}, True),
    ((4,), 2, {"label_smoothing": 0.1}, True),
    ((2, 3, 2), [[0, 2], [1, 1]], {"reduction": "none"}, True),
    ((3, 4), [0, -100, 3], {}, False),
    ((3, 4), [0, 1, 3], {"weight": mg.ones(4)}, False),
    ((3, 4), [0, 1, 3], {"ignore_index": 1}, False),
])
def test_the_plain_case_runs_the_fused_op_and_the_options_the_composite(shape, target, options,
                                                                          fused):
    loss = F.cross_entropy(mg.randn(*shape, requires_grad=True), mg.tensor(target), **options)
    assert ("SoftmaxCrossEntropy" in graph_ops(loss)) == fused


def loss_and_grad(lib, loss_fn, scores, **kwargs):
    x = lib.tensor(scores, requires_grad=True)
    loss = loss_fn(x, **kwargs)
    loss.sum().backward()
    return {"loss": loss.detach().numpy(), "grad": x.grad.numpy()}


def test_every_target_ignored_gives_nan_mean_and_zero_gradient_as_torch(torch_reference):
    scores, target = np.arange(6.0).reshape(2, 3), np.array([-100, -100])
    expected = torch_reference("all_ignored", lambda torch: loss_and_grad(
        torch, torch_F().cross_entropy, scores, target=torch.tensor(target)))
    ours = loss_and_grad(mg, F.cross_entropy, scores, target=mg.tensor(target))
    assert np.isnan(expected["loss"]) and np.isnan(ours["loss"])
    np.testing.assert_array_equal(ours["grad"], expected["grad"])


def test_binary_cross_entropy_at_0_and_1_is_finite_as_torch(torch_reference):
    probabilities, target = np.array([0.0, 1.0, 0.0, 1.0, 0.5]), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    expected = torch_reference("bce_edges", lambda torch: loss_and_grad(
        torch, torch_F().binary_cross_entropy, probabilities, target=torch.tensor(target),
        reduction="none"))
    ours = loss_and_grad(mg, F.binary_cross_entropy, probabilities, target=mg.tensor(target),
                         reduction="none")
    np.testing.assert_array_equal(ours["loss"], expected["loss"])  # 0, 0, 100, 100, log 2
    # -+1e12 = (x - y) / 1e-12 at the clamped ends (PyTorch's 1e-12 is a float32: 4e-9 apart)
    np.testing.assert_allclose(ours["grad"], expected["grad"], rtol=1e-8)


# ------------------------------------------------------------------ modules
WEIGHTS = np.array([0.5, 2.0, 1.0])
SCORES = np.random.default_rng(3).standard_normal((4, 3))
OTHER = np.random.default_rng(4).standard_normal((4, 3))
PROBABILITIES = 1 / (1 + np.exp(-OTHER))
CLASSES, SIGNS = np.array([0, 2, 1, 2]), np.array([1.0, -1.0, -1.0, 1.0])
# name: (minigrad module, PyTorch module, the inputs: arrays, or "classes"/"signs").
MODULES = {
    "CrossEntropyLoss": (lambda nn, w: nn.CrossEntropyLoss(weight=w, ignore_index=1,
                                                           label_smoothing=0.1),
                         (SCORES, CLASSES)),
    "NLLLoss": (lambda nn, w: nn.NLLLoss(weight=w, reduction="sum"), (SCORES, CLASSES)),
    "BCELoss": (lambda nn, w: nn.BCELoss(weight=w), (PROBABILITIES, 1 - PROBABILITIES)),
    "BCEWithLogitsLoss": (lambda nn, w: nn.BCEWithLogitsLoss(pos_weight=w, reduction="none"),
                          (SCORES, PROBABILITIES)),
    "MSELoss": (lambda nn, w: nn.MSELoss(reduction="sum"), (SCORES, OTHER)),
    "L1Loss": (lambda nn, w: nn.L1Loss(), (SCORES, OTHER)),
    "SmoothL1Loss": (lambda nn, w: nn.SmoothL1Loss(beta=0.5), (SCORES, OTHER)),
    "HuberLoss": (lambda nn, w: nn.HuberLoss(delta=0.5), (SCORES, OTHER)),
    "KLDivLoss": (lambda nn, w: nn.KLDivLoss(reduction="batchmean", log_target=True),
                  (SCORES, OTHER)),
    "SoftMarginLoss": (lambda nn, w: nn.SoftMarginLoss(), (SCORES[:, 0], SIGNS)),
    "MarginRankingLoss": (lambda nn, w: nn.MarginRankingLoss(margin=0.3),
                          (SCORES[:, 0], OTHER[:, 0], SIGNS)),
    "CosineEmbeddingLoss": (lambda nn, w: nn.CosineEmbeddingLoss(margin=-0.2),
                            (SCORES, OTHER, SIGNS)),
    "TripletMarginLoss": (lambda nn, w: nn.TripletMarginLoss(margin=2.0, p=1.0, swap=True),
                          (SCORES, OTHER, PROBABILITIES)),
    "CosineSimilarity": (lambda nn, w: nn.CosineSimilarity(dim=0), (SCORES, OTHER)),
    "PairwiseDistance": (lambda nn, w: nn.PairwiseDistance(p=3.0, keepdim=True),
                         (SCORES, OTHER)),
}


@pytest.mark.parametrize("name", MODULES)
def test_loss_modules_match_torch(name, torch_reference):
    make, inputs = MODULES[name]

    def outputs(lib, nn):
        module = make(nn, lib.tensor(WEIGHTS))
        return module(*[lib.tensor(a) for a in inputs])

    expected = torch_reference(f"module_{name}", lambda torch: {
        "out": outputs(torch, torch.nn)})
    assert type(make(losses, mg.tensor(WEIGHTS))).__name__ == name
    np.testing.assert_allclose(outputs(mg, losses).numpy(), expected["out"], rtol=1e-12)


def test_class_weights_are_buffers_saved_in_the_state_dict_as_in_torch():
    weight = mg.tensor([1.0, 2.0, 3.0])
    cross_entropy = losses.CrossEntropyLoss(weight=weight)
    assert list(cross_entropy.state_dict()) == ["weight"]
    np.testing.assert_array_equal(cross_entropy.state_dict()["weight"].numpy(), [1, 2, 3])
    assert [name for name, _ in cross_entropy.named_buffers()] == ["weight"]
    assert cross_entropy.to("cpu").weight is weight
    # A weight that is None is no buffer in the state dict (PyTorch's keys: ['pos_weight']).
    assert list(losses.BCEWithLogitsLoss(pos_weight=[2.0]).state_dict()) == ["pos_weight"]
    assert list(losses.CrossEntropyLoss().state_dict()) == []
    assert list(losses.MSELoss().parameters()) == []


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_huber_loss_weight_scales_each_element_as_torch(reduction, torch_reference):
    weight = np.array([[0.5, 2.0, 0.0], [1.0, 3.0, 0.25]])
    expected = torch_reference(f"huber_weight_{reduction}", lambda torch: loss_and_grad(
        torch, torch_F().huber_loss, SCORES[:2], target=torch.tensor(OTHER[:2]),
        weight=torch.tensor(weight), delta=0.7, reduction=reduction))
    ours = loss_and_grad(mg, F.huber_loss, SCORES[:2], target=mg.tensor(OTHER[:2]),
                         weight=mg.tensor(weight), delta=0.7, reduction=reduction)
    np.testing.assert_allclose(ours["loss"], expected["loss"], rtol=1e-12)
    np.testing.assert_allclose(ours["grad"], expected["grad"], rtol=1e-12)


# ------------------------------------------------------------------ bad input
def test_cross_entropy_errors_name_the_shapes_the_index_and_the_lengths():
    with pytest.raises(ValueError, match=r"cross_entropy: expected input \(N, C, d1, \.\.\.\) "
                                         r"and target \(N, d1, \.\.\.\), got input \(2, 3, 4\) "
                                         r"and target \(2, 3\)"):
        F.cross_entropy(mg.zeros(2, 3, 4), mg.tensor([[0, 1, 2], [0, 1, 2]]))
    with pytest.raises(ValueError, match=r"nll_loss: expected input \(C,\) and target \(\), "
                                         r"got input \(3,\) and target \(1,\)"):
        F.nll_loss(mg.zeros(3), mg.tensor([1]))
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\), got -1..2: "
                                         r"class index -1 is out of range"):
        F.cross_entropy(mg.zeros(2, 3), mg.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"class index 7 is out of range"):
        F.cross_entropy(mg.zeros(2, 3), mg.tensor([7, -100]), weight=mg.ones(3))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must hold one value per "
                                         r"class: got 4 \(shape \(4,\)\) for 3 classes"):
        F.cross_entropy(mg.zeros(2, 3), mg.tensor([0, 1]), weight=mg.ones(4))
    with pytest.raises(ValueError, match=r"nll_loss: weight .* got 2 .* for 3 classes"):
        F.nll_loss(mg.zeros(2, 3), mg.tensor([0, 1]), weight=mg.ones(2))
    with pytest.raises(TypeError, match=r"integer class indices, or class probabilities of the "
                                        r"input's shape \(2, 3\); got float32 of shape \(2, 4\)"):
        F.cross_entropy(mg.zeros(2, 3), mg.zeros(2, 4))
    with pytest.raises(ValueError, match="ignore_index=0 has no meaning"):
        F.cross_entropy(mg.zeros(2, 3), mg.zeros(2, 3), ignore_index=0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        F.cross_entropy(mg.zeros(2, 3), mg.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="got a 0-d tensor"):
        F.cross_entropy(mg.tensor(1.0), mg.tensor(0))


@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss,
                                  F.binary_cross_entropy, F.binary_cross_entropy_with_logits,
                                  F.soft_margin_loss])
def test_elementwise_losses_refuse_to_broadcast_and_name_both_shapes(loss):
    # PyTorch warns and broadcasts; a (N, 1) prediction against an (N,) target silently
    # gives an (N, N) loss, so minigrad refuses.
    with pytest.raises(ValueError, match=rf"{loss.__name__}: input shape \(3, 1\) and target "
                                         r"shape \(3,\) differ"):
        loss(mg.full((3, 1), 0.5), mg.full((3,), 0.5))


def test_other_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities "
                                         r"in \[0, 1\], got values in \[-0.5, 1.0\]"):
        F.binary_cross_entropy(mg.tensor([-0.5, 1.0]), mg.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: pos_weight of "
                                         r"shape \(4,\) does not broadcast to the input's shape "
                                         r"\(2, 3\)"):
        F.binary_cross_entropy_with_logits(mg.zeros(2, 3), mg.zeros(2, 3), pos_weight=mg.ones(4))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: weight of shape \(2, 2, 3\) "
                                         r"does not broadcast"):
        F.binary_cross_entropy(mg.zeros(2, 3), mg.zeros(2, 3), weight=mg.ones(2, 2, 3))
    with pytest.raises(ValueError, match="huber_loss: delta must be positive, got 0"):
        F.huber_loss(mg.zeros(2), mg.zeros(2), delta=0)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be non-negative, got -1"):
        F.smooth_l1_loss(mg.zeros(2), mg.zeros(2), beta=-1)
    with pytest.raises(ValueError, match=r"cosine_similarity: shapes \(2, 3\) and \(4,\) "
                                         r"cannot be broadcast together"):
        F.cosine_similarity(mg.zeros(2, 3), mg.zeros(4))
    with pytest.raises(IndexError, match=r"normalize: dim 2 is out of range for a tensor of "
                                         r"shape \(2, 3\)"):
        F.normalize(mg.ones(2, 3), dim=2)
    with pytest.raises(ValueError, match=r"cosine_embedding_loss: expected inputs \(N, D\) with "
                                         r"target \(N,\).*got inputs \(4, 3\) and target \(3,\)"):
        F.cosine_embedding_loss(mg.ones(4, 3), mg.ones(4, 3), mg.ones(3))
    with pytest.raises(ValueError, match=r"triplet_margin_loss: .* got \(4, 3\), \(4, 3\) and "
                                         r"\(3,\)"):
        F.triplet_margin_loss(mg.ones(4, 3), mg.ones(4, 3), mg.ones(3))


def test_normalize_and_cosine_similarity_take_numpy_spellings_and_zero_vectors():
    x = mg.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    np.testing.assert_allclose(F.normalize(x, axis=-1).numpy(), [[0.6, 0.8], [0.0, 0.0]])
    F.normalize(x, dim=1).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()  # the zero row's norm has gradient 0, not 0/0
    np.testing.assert_allclose(F.cosine_similarity(x, x, axis=1).numpy(), [1.0, 0.0], atol=1e-7)


# ------------------------------------------------------------------ the namespace
def test_dir_of_functional_lists_exactly_its_public_functions():
    assert dir(F) == sorted(F.__all__)
    assert len(set(F.__all__)) == len(F.__all__)
    for name in F.__all__:
        assert callable(getattr(F, name)), name
    defined_here = {name for name, value in vars(F).items()
                    if callable(value) and not name.startswith("_") and not isinstance(value, type)
                    and getattr(value, "__module__", None) == F.__name__}
    assert defined_here - {"cross_entropy_composite"} <= set(F.__all__)
    assert "ops" not in dir(F) and "Tensor" not in dir(F) and "array_module" not in dir(F)
