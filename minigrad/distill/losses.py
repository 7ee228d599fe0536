"""Distillation losses, built from minigrad ops so that gradients flow into the student.

A small *student* learns from a large, trained *teacher*. What it imitates comes in three
kinds (Gou et al. 2021, "Knowledge Distillation: A Survey"):

* responses, the teacher's outputs: ``kd_loss`` (soft targets, Hinton et al. 2015) and
  ``logit_mse_loss`` (Ba & Caruana 2014);
* features, the teacher's intermediate activations: ``hint_loss`` (FitNets, Romero et al.
  2015) and ``attention_transfer_loss`` (Zagoruyko & Komodakis 2017);
* relations between the samples of a batch: ``similarity_preserving_loss`` (Tung & Mori
  2019).

Teacher tensors are always detached here: the teacher is a fixed target, never trained by
the student's loss. The arguments follow PyTorch's order for losses (what is trained first,
the target after).
"""

import math
import numbers

from minigrad import nn, ops
from minigrad.nn import functional as F
from minigrad.tensor import as_tensor


# --------------------------------------------------------------------------- checks
def check_temperature(T):
    """T must be a positive number (softmax(z / T) is undefined at T = 0)."""
    if isinstance(T, bool) or not isinstance(T, numbers.Real) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"distillation: the temperature T must be a positive number, got {T!r}")


def check_alpha(alpha):
    """alpha weighs the soft-target term against the hard-label term, so it lies in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"distillation: alpha must be in [0, 1], got {alpha!r}")


def check_logits(name, student_logits, teacher_logits):
    """Both (N, C) with the same N and the same number of classes C."""
    if student_logits.ndim != 2 or teacher_logits.ndim != 2:
        raise ValueError(f"{name}: expected (N, C) logits, got student {student_logits.shape} "
                         f"and teacher {teacher_logits.shape}")
    if student_logits.shape[1] != teacher_logits.shape[1]:
        raise ValueError(f"{name}: the student has {student_logits.shape[1]} classes and the "
                         f"teacher {teacher_logits.shape[1]}; they must predict the same classes")
    if student_logits.shape[0] != teacher_logits.shape[0]:
        raise ValueError(f"{name}: {student_logits.shape[0]} student rows but "
                         f"{teacher_logits.shape[0]} teacher rows; both must see the same batch")


def _check_feature_pair(name, student_feature, teacher_feature, same):
    """Same batch size; the same number of axes, equal at the indices in ``same``."""
    s, t = student_feature.shape, teacher_feature.shape
    if s[0] != t[0] or (same and (len(s) != len(t) or any(s[i] != t[i] for i in same))):
        needs = f" and equal axes {list(same)}" if same else ""
        raise ValueError(f"{name}: student feature {s} and teacher feature {t} do not match "
                         f"(they need the same batch size{needs})")


# --------------------------------------------------------------------------- responses
def soft_target_loss(student_logits, teacher_logits, T):
    """T^2 KL(p || q), p = softmax(t / T) the teacher's soft targets, q = softmax(s / T):

        T^2 / N  sum_n sum_c  p_nc (log p_nc - log q_nc)

    (``F.kl_div(log q, p, reduction="batchmean")``: the mean over the batch of the KL of each
    sample). Its gradient with respect to a student logit is T (q - p) / N: dividing by T
    softens both distributions, which shrinks the gradient by 1/T^2 -- the factor T^2 gives it
    back, so the soft term keeps its weight when T changes (Hinton et al. 2015, section 2).
    """
    check_temperature(T)
    teacher_logits = as_tensor(teacher_logits)
    check_logits("soft_target_loss", student_logits, teacher_logits)
    log_q = F.log_softmax(student_logits / T, dim=-1)
    p = F.softmax(teacher_logits.detach() / T, dim=-1)
    return F.kl_div(log_q, p, reduction="batchmean") * (T * T)


def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.9):
    """Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a
    Neural Network"):

        L = (1 - alpha) CE(y, softmax(s)) + alpha T^2 KL(softmax(t / T) || softmax(s / T))

    The hard term is the usual cross-entropy with the labels y (at T = 1); the soft term
    (``soft_target_loss``) asks the student to reproduce the teacher's whole distribution,
    including how much a "2" looks like a "3", at a temperature T that makes those small
    probabilities visible. alpha = 1 is pure distillation, alpha = 0 plain training.
    """
    check_alpha(alpha)
    soft = soft_target_loss(student_logits, teacher_logits, T)
    return (1 - alpha) * F.cross_entropy(student_logits, targets) + alpha * soft


def deit_loss(cls_logits, dist_logits, teacher_logits, targets, distillation="hard",
              alpha=0.5, T=1.0):
    """DeiT's loss (Touvron et al. 2021, "Training data-efficient image transformers &
    distillation through attention"): a ViT with a distillation token has two heads, the
    class token's (c) trained on the labels y and the distillation token's (d) on the teacher:

        hard:  L = (1 - alpha) CE(y, softmax(c)) + alpha CE(argmax_k t_k, softmax(d))
        soft:  L = (1 - alpha) CE(y, softmax(c)) + alpha T^2 KL(softmax(t / T) || softmax(d / T))

    The hard form, with alpha = 1/2, is the paper's best: the teacher's decision replaces its
    distribution, so the distillation head learns what the teacher predicts, including where
    it differs from the label (a crop where the digit is hardly visible). At test time the
    prediction is the mean of the two heads' logits (``models.ViT(distillation=True)`` in
    eval mode).
    """
    check_alpha(alpha)
    teacher_logits = as_tensor(teacher_logits)
    check_logits("deit_loss", dist_logits, teacher_logits)
    check_logits("deit_loss", cls_logits, teacher_logits)
    if distillation == "hard":
        teacher_labels = teacher_logits.detach().argmax(axis=1)
        teacher_term = F.cross_entropy(dist_logits, teacher_labels)
    elif distillation == "soft":
        teacher_term = soft_target_loss(dist_logits, teacher_logits, T)
    else:
        raise ValueError(f"deit_loss: distillation must be 'hard' or 'soft', got "
                         f"{distillation!r}")
    return (1 - alpha) * F.cross_entropy(cls_logits, targets) + alpha * teacher_term


def logit_mse_loss(student_logits, teacher_logits):
    """Regress the teacher's logits (Ba & Caruana 2014, "Do Deep Nets Really Need to be
    Deep?"): the mean over the batch of

        1/2 || s - t ||^2

    This is the limit of the soft term at high temperature: with logits of zero mean per
    sample, T^2 KL -> || s - t ||^2 / (2 C) as T -> infinity (C classes), Hinton et al.'s
    argument that matching logits is a special case of distillation.
    """
    teacher_logits = as_tensor(teacher_logits)
    check_logits("logit_mse_loss", student_logits, teacher_logits)
    difference = student_logits - teacher_logits.detach()
    return 0.5 * (difference * difference).sum(axis=1).mean()


# --------------------------------------------------------------------------- features
def hint_adapter(student_shape, teacher_shape):
    """The FitNets regressor that maps a student feature to the teacher's: a Linear layer for
    per-sample shapes (C_s,) -> (C_t,), a 1x1 convolution for (C_s, H, W) -> (C_t, H, W).
    Its parameters are trained with the student's (``Distiller`` holds it as a submodule)."""
    student_shape, teacher_shape = tuple(student_shape), tuple(teacher_shape)
    if len(student_shape) == len(teacher_shape) == 1:
        return nn.Linear(student_shape[0], teacher_shape[0])
    if len(student_shape) == len(teacher_shape) == 3 and student_shape[1:] == teacher_shape[1:]:
        return nn.Conv2d(student_shape[0], teacher_shape[0], kernel_size=1)
    raise ValueError(f"hint_adapter: cannot map a student feature of shape {student_shape} to "
                     f"a teacher feature of shape {teacher_shape} (per sample: (C,) to (C,), "
                     "or (C, H, W) to (C, H, W) with the same H and W)")


def hint_loss(student_feature, teacher_feature, adapter):
    """FitNets hint (Romero et al. 2015, "FitNets: Hints for Thin Deep Nets"): the student's
    guided layer, through a learned regressor r, predicts the teacher's hint layer:

        L = mean over the N x D entries of (t - r(s))^2

    (FitNets write 1/2 || t - r(s) ||^2 per sample; the constant goes into the term's
    weight). Gradients reach the adapter r and, through it, the student; never the teacher.
    """
    adapted = adapter(student_feature)
    if adapted.shape != teacher_feature.shape:
        raise ValueError(f"hint_loss: the adapter maps the student feature "
                         f"{student_feature.shape} to {adapted.shape}, but the teacher feature "
                         f"is {teacher_feature.shape}")
    return F.mse_loss(adapted, teacher_feature.detach())


def l2_normalize(x, eps=1e-12):
    """Each row divided by its Euclidean norm, or by eps when the norm is smaller (PyTorch's
    ``F.normalize``; below eps the divisor is a constant, so an all-zero row gets a zero, not
    an infinite, gradient)."""
    squared_norm = (x * x).sum(axis=1, keepdims=True)
    return x / ops.sqrt(ops.clip(squared_norm, eps * eps))


def attention_map(feature, p=2):
    """Activation-based spatial attention (Zagoruyko & Komodakis 2017): for A of shape
    (N, C, H, W), Q = mean over channels of |A_c|^p, flattened to (N, H W) and divided by its
    L2 norm. A 2-D feature (N, D) is read as D positions with one channel: Q = |a|^p,
    normalized."""
    magnitude = ops.abs(feature) ** p
    if feature.ndim > 2:
        magnitude = magnitude.mean(axis=1)
    return l2_normalize(magnitude.reshape(feature.shape[0], -1))


def attention_transfer_loss(student_feature, teacher_feature, p=2):
    """Attention transfer (Zagoruyko & Komodakis 2017, "Paying More Attention to Attention"):
    the student's attention map should equal the teacher's where the two layers have the same
    spatial size (the channel counts may differ):

        L = mean over n and positions k of (Q_S[n, k] - Q_T[n, k])^2,   Q = attention_map

    This is the authors' code; the paper writes beta/2 sum_j || Q_S^j - Q_T^j ||_p over the
    layer pairs j, with beta = 1000, which is the weight to give the term.
    """
    same = tuple(range(2, student_feature.ndim)) if student_feature.ndim > 2 else (1,)
    _check_feature_pair("attention_transfer_loss", student_feature, teacher_feature, same)
    difference = attention_map(student_feature, p) - attention_map(teacher_feature.detach(), p)
    return (difference * difference).mean()


def similarity_preserving_loss(student_feature, teacher_feature):
    """Similarity-preserving distillation (Tung & Mori 2019): samples the teacher finds alike
    should look alike to the student. With Q the features flattened to (N, D), G = Q Q^T is the
    N x N matrix of similarities within the batch; each row is L2-normalized, and

        L = || G_S - G_T ||_F^2 / N^2

    G is N x N whatever D is, so the two layers may have any widths and shapes.
    """
    _check_feature_pair("similarity_preserving_loss", student_feature, teacher_feature, ())
    n = student_feature.shape[0]

    def similarities(feature):
        flat = feature.reshape(n, -1)
        return l2_normalize(flat @ flat.T)

    difference = similarities(student_feature) - similarities(teacher_feature.detach())
    return (difference * difference).sum() / (n * n)


__all__ = ["attention_map", "attention_transfer_loss", "check_alpha", "check_logits",
           "deit_loss", "check_temperature", "hint_adapter", "hint_loss", "kd_loss", "l2_normalize",
           "logit_mse_loss", "similarity_preserving_loss", "soft_target_loss"]
