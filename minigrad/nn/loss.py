"""Loss modules: each loss of ``minigrad.nn.functional`` as a Module that holds its options,
with PyTorch's class names and constructor arguments (without the deprecated ``size_average``
and ``reduce``). ``loss_fn = CrossEntropyLoss(label_smoothing=0.1); loss_fn(scores, y)`` is
``F.cross_entropy(scores, y, label_smoothing=0.1)``.

Class weights (``weight``, ``pos_weight``) are buffers, as in PyTorch: they move with
``.to(device)`` and are saved in ``state_dict``. ``CosineSimilarity`` and ``PairwiseDistance``
are here too, since they are the distances the embedding losses are built on.
"""

from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.tensor import as_tensor

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CosineEmbeddingLoss", "CosineSimilarity",
    "CrossEntropyLoss", "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss", "MarginRankingLoss",
    "NLLLoss", "PairwiseDistance", "SmoothL1Loss", "SoftMarginLoss", "TripletMarginLoss",
]


class Loss(Module):
    """Base of the loss modules: keeps ``reduction`` ("mean", "sum" or "none")."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction


class WeightedLoss(Loss):
    """A loss with a per-class ``weight``, kept as a buffer (None when not given)."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", None if weight is None else as_tensor(weight))


class CrossEntropyLoss(WeightedLoss):
    """``F.cross_entropy``: softmax cross-entropy of raw scores against class indices or
    class probabilities."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(weight, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(WeightedLoss):
    """``F.nll_loss``: negative log-likelihood of log-probabilities at the target classes."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCELoss(WeightedLoss):
    """``F.binary_cross_entropy``: binary cross-entropy of probabilities."""

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class BCEWithLogitsLoss(WeightedLoss):
    """``F.binary_cross_entropy_with_logits``: binary cross-entropy of raw scores, with
    ``pos_weight`` (a buffer) weighting the positive term of each class."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", None if pos_weight is None else as_tensor(pos_weight))

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class MSELoss(Loss):
    """``F.mse_loss``: (input - target)^2."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(Loss):
    """``F.l1_loss``: |input - target|."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(Loss):
    """``F.smooth_l1_loss``: quadratic below ``beta``, linear above."""

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(Loss):
    """``F.huber_loss``: quadratic below ``delta``, linear above."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(Loss):
    """``F.kl_div``: KL(target || model) from the model's log-probabilities."""

    def __init__(self, reduction="mean", log_target=False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class SoftMarginLoss(Loss):
    """``F.soft_margin_loss``: log(1 + e^(-y x))."""

    def forward(self, input, target):
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class MarginRankingLoss(Loss):
    """``F.margin_ranking_loss``: max(0, -y (x1 - x2) + margin)."""

    def __init__(self, margin=0.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin,
                                     reduction=self.reduction)


class CosineEmbeddingLoss(Loss):
    """``F.cosine_embedding_loss``: 1 - cos for similar pairs, max(0, cos - margin) for
    dissimilar ones."""

    def __init__(self, margin=0.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                       reduction=self.reduction)


class TripletMarginLoss(Loss):
    """``F.triplet_margin_loss``: max(d(a, p) - d(a, n) + margin, 0)."""

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
        super().__init__(reduction)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                     eps=self.eps, swap=self.swap, reduction=self.reduction)


class CosineSimilarity(Module):
    """``F.cosine_similarity`` along ``dim``."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, dim=self.dim, eps=self.eps)


class PairwiseDistance(Module):
    """``F.pairwise_distance``: ||x1 - x2 + eps||_p along the last dim."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.p, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, p=self.p, eps=self.eps, keepdim=self.keepdim)
