"""Stochastic gradient descent with momentum, PyTorch's ``torch.optim.SGD`` exactly.

For each parameter w with gradient g (negated when ``maximize``):

    g <- g + weight_decay * w                       (L2 penalty, as a gradient term)
    b <- g                      on the first step   (momentum buffer)
    b <- momentum * b + (1 - dampening) * g          afterwards
    g <- g + momentum * b   if nesterov   else   g <- b
    w <- w - lr * g

With momentum = 0 it is plain (mini-batch) gradient descent, w <- w - lr * g. Momentum is
Polyak's heavy ball (1964) in the form of Sutskever et al. (2013); Nesterov's variant looks one
step ahead along the buffer.
"""

from minigrad.optim.optimizer import Optimizer, gradient_with_weight_decay


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        self.require_nonnegative(group, "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")

    def step(self):
        for p, group in self.params_with_grad():
            g = gradient_with_weight_decay(p, group)
            momentum = group["momentum"]
            if momentum:
                state = self.state.setdefault(p, {})
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g.copy()
                else:
                    buf = state["momentum_buffer"]
                    buf *= momentum
                    buf += (1 - group["dampening"]) * g
                buf = state["momentum_buffer"]
                g = g + momentum * buf if group["nesterov"] else buf
            p.data -= group["lr"] * g
