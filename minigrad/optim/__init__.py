"""``minigrad.optim``: the Optimizer base class and the optimizers built on it.

    SGD        gradient descent, with (Nesterov) momentum          sgd.py
    Adagrad    per-coordinate steps from the sum of squared grads  adagrad.py
    RMSprop    ... from a running mean of squared grads            rmsprop.py
    Adam       momentum + RMSprop scaling, bias-corrected          adam.py
    AdamW      Adam with decoupled weight decay                    adam.py
    NAdam      Adam with Nesterov momentum                         nadam.py

Each module's docstring gives the update rule and the paper it comes from; all follow
``torch.optim``'s semantics exactly. ``lr_scheduler`` changes the learning rate as training goes
(step, exponential, cosine, cyclic, one-cycle, warmup, on plateau, ...).
"""

from minigrad.optim import lr_scheduler
from minigrad.optim.adagrad import Adagrad
from minigrad.optim.adam import Adam, AdamW
from minigrad.optim.nadam import NAdam
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.rmsprop import RMSprop
from minigrad.optim.sgd import SGD

__all__ = ["lr_scheduler", "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam"]
