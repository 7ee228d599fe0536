"""AdaGrad, PyTorch's ``torch.optim.Adagrad`` exactly (Duchi, Hazan & Singer, "Adaptive
Subgradient Methods for Online Learning and Stochastic Optimization", JMLR 2011).

For each parameter w with gradient g (negated when ``maximize``), at step t = 1, 2, ...:

    g <- g + weight_decay * w                    (L2 penalty, as a gradient term)
    s <- s + g * g                               (sum of squared gradients;
                                                  s starts at initial_accumulator_value)
    w <- w - lr_t * g / (sqrt(s) + eps),         lr_t = lr / (1 + (t - 1) * lr_decay)

Every coordinate gets its own step size, which shrinks as its squared gradients pile up in s:
coordinates that saw large gradients slow down, rarely-seen ones keep a large step. Mind the
details some tutorials get wrong: s is the *sum* of the squares (a mean would be RMSprop), and
eps is added after the square root, not inside it.
"""

import numpy as np

from minigrad.backend import array_module
from minigrad.optim.optimizer import Optimizer, gradient_with_weight_decay


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        self.require_nonnegative(group, "lr_decay", "weight_decay", "initial_accumulator_value",
                                 "eps")

    def initial_state(self, p, group):
        xp = array_module(p.data)
        return {"step": np.zeros((), dtype=np.int64),
                "sum": xp.full_like(p.data, group["initial_accumulator_value"])}

    def step(self):
        for p, group in self.params_with_grad():
            g = gradient_with_weight_decay(p, group)
            state = self.param_state(p, group)
            state["step"] += 1
            lr = group["lr"] / (1 + (int(state["step"]) - 1) * group["lr_decay"])
            state["sum"] += g * g
            p.data -= lr * g / (array_module(p.data).sqrt(state["sum"]) + group["eps"])
