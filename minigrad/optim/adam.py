"""Adam and AdamW, PyTorch's ``torch.optim.Adam`` and ``torch.optim.AdamW`` exactly.

Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015). For each
parameter w with gradient g (negated when ``maximize``), at step t = 1, 2, ...:

    g <- g + weight_decay * w                    (L2 penalty, as a gradient term)
    m <- beta1 * m + (1 - beta1) * g             (running mean of g, m0 = 0)
    v <- beta2 * v + (1 - beta2) * g^2           (running mean of g^2, v0 = 0)
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)    (undo the pull toward m0 = v0 = 0)
    w <- w - lr * m_hat / (sqrt(v_hat) + eps)

Momentum (m) and RMSprop's per-coordinate scaling (v) together; far from the start, a step
moves each coordinate by about lr, whatever the scale of its gradient.

AMSGrad (``amsgrad=True``; Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond",
ICLR 2018) divides by the largest v so far, so a coordinate's step size never grows again:

    v_max <- max(v_max, v),   v_hat = v_max / (1 - beta2^t)      (v_max0 = 0)

AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019) decays the
weights themselves instead of adding weight_decay * w to g, where Adam's division by
sqrt(v_hat) would weaken the decay exactly for the coordinates with large gradients:

    w <- w - lr * weight_decay * w               (first, in place of the L2 term)
"""

import math

import numpy as np

from minigrad.backend import array_module
from minigrad.optim.optimizer import Optimizer, gradient_with_weight_decay


def update_moments(state, g, beta1, beta2):
    """One step of the running means: t <- t + 1, m <- beta1 * m + (1 - beta1) * g and
    v <- beta2 * v + (1 - beta2) * g^2, in place in ``state``; returns t."""
    state["step"] += 1
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m += (1 - beta1) * (g - m)
    v *= beta2
    v += (1 - beta2) * g * g
    return int(state["step"])


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        self.require_nonnegative(group, "eps", "weight_decay")
        self.require_fraction("betas", group["betas"])

    def initial_state(self, p, group):
        xp = array_module(p.data)
        state = {"step": np.zeros((), dtype=np.int64), "exp_avg": xp.zeros_like(p.data),
                 "exp_avg_sq": xp.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        return state

    def step(self):
        for p, group in self.params_with_grad():
            xp, (beta1, beta2) = array_module(p.data), group["betas"]
            g = gradient_with_weight_decay(p, group)
            state = self.param_state(p, group)
            t = update_moments(state, g, beta1, beta2)
            v = state["exp_avg_sq"]
            if group["amsgrad"]:
                v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            d = xp.sqrt(v) / math.sqrt(1 - beta2**t) + group["eps"]
            p.data -= group["lr"] / (1 - beta1**t) * state["exp_avg"] / d


class AdamW(Adam):
    """Adam with decoupled weight decay, on by default (see the module docstring)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize,
                         decoupled_weight_decay=True)
