"""NAdam: Adam with Nesterov momentum, PyTorch's ``torch.optim.NAdam`` exactly (Dozat,
"Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop).

The optimizer learners ask for after Adam: it joins two ideas they have met, SGD's Nesterov
look-ahead and Adam's scaling. Nesterov steps along the momentum the *next* step will have
instead of the current one; Dozat does that inside Adam, with a momentum coefficient mu_t that
rises from beta1 / 2 toward beta1 (a warm-up: little momentum while m is a poor average).

For each parameter w with gradient g (negated when ``maximize``), at step t = 1, 2, ...:

    g <- g + weight_decay * w                    (L2 penalty; or, with
                                                  decoupled_weight_decay, w <- w - lr * wd * w
                                                  as AdamW does, "NAdamW")
    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))     (momentum schedule)
    m <- beta1 * m + (1 - beta1) * g,   v <- beta2 * v + (1 - beta2) * g^2   (as in Adam)
    d = sqrt(v / (1 - beta2^t)) + eps
    w <- w - lr * (1 - mu_t) / (1 - mu_1 ... mu_t) * g / d
           - lr * mu_{t+1} / (1 - mu_1 ... mu_{t+1}) * m / d

The two terms are the current gradient's share and the look-ahead momentum, each with its
bias correction (the products of the mu's play the part of Adam's beta1^t).
"""

import numpy as np

from minigrad.backend import array_module
from minigrad.optim.adam import update_moments
from minigrad.optim.optimizer import Optimizer, gradient_with_weight_decay


def momentum_schedule(beta1, momentum_decay, t):
    """Dozat's mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))."""
    return beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))


class NAdam(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        self.require_nonnegative(group, "eps", "weight_decay", "momentum_decay")
        self.require_fraction("betas", group["betas"])

    def initial_state(self, p, group):
        xp = array_module(p.data)
        return {"step": np.zeros((), dtype=np.int64), "mu_product": np.ones(()),
                "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}

    def step(self):
        for p, group in self.params_with_grad():
            beta1, beta2 = group["betas"]
            g = gradient_with_weight_decay(p, group)
            state = self.param_state(p, group)
            t = update_moments(state, g, beta1, beta2)
            mu = momentum_schedule(beta1, group["momentum_decay"], t)
            mu_next = momentum_schedule(beta1, group["momentum_decay"], t + 1)
            state["mu_product"] *= mu
            mu_product = float(state["mu_product"])
            d = array_module(p.data).sqrt(state["exp_avg_sq"] / (1 - beta2**t)) + group["eps"]
            p.data -= group["lr"] * (1 - mu) / (1 - mu_product) * g / d
            p.data -= group["lr"] * mu_next / (1 - mu_product * mu_next) * state["exp_avg"] / d
