"""RMSprop, PyTorch's ``torch.optim.RMSprop`` exactly (Hinton, Srivastava & Swersky, "Neural
Networks for Machine Learning", lecture 6e, 2012; the centered variant from Graves,
"Generating Sequences With Recurrent Neural Networks", 2013).

For each parameter w with gradient g (negated when ``maximize``):

    g <- g + weight_decay * w                    (L2 penalty, as a gradient term)
    v <- alpha * v + (1 - alpha) * g^2           (running mean of squared gradients, v0 = 0)
    d = sqrt(v) + eps                            plain
    a <- alpha * a + (1 - alpha) * g,            centered (a0 = 0):
    d = sqrt(v - a^2) + eps                      divide by the spread of g, not its size
    w <- w - lr * g / d                          momentum = 0
    b <- momentum * b + g / d,  w <- w - lr * b  momentum > 0 (b0 = 0)

AdaGrad with a memory that fades: v is an exponential moving average instead of a sum, so the
step size follows the recent size of the gradients instead of shrinking for ever.
"""

from minigrad.backend import array_module
from minigrad.optim.optimizer import Optimizer, gradient_with_weight_decay


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        self.require_nonnegative(group, "eps", "weight_decay", "momentum")
        self.require_fraction("alpha", group["alpha"])

    def initial_state(self, p, group):
        xp = array_module(p.data)
        state = {"square_avg": xp.zeros_like(p.data)}
        if group["centered"]:
            state["grad_avg"] = xp.zeros_like(p.data)
        if group["momentum"] > 0:
            state["momentum_buffer"] = xp.zeros_like(p.data)
        return state

    def step(self):
        for p, group in self.params_with_grad():
            xp, alpha = array_module(p.data), group["alpha"]
            g = gradient_with_weight_decay(p, group)
            state = self.param_state(p, group)
            v = state["square_avg"]
            v *= alpha
            v += (1 - alpha) * g * g
            if group["centered"]:
                a = state["grad_avg"]
                a += (1 - alpha) * (g - a)
                d = xp.sqrt(v - a * a) + group["eps"]
            else:
                d = xp.sqrt(v) + group["eps"]
            if group["momentum"] > 0:
                b = state["momentum_buffer"]
                b *= group["momentum"]
                b += g / d
                p.data -= group["lr"] * b
            else:
                p.data -= group["lr"] * g / d
