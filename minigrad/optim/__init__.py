"""``minigrad.optim``: the Optimizer base class and the optimizers built on it."""

from minigrad.optim.optimizer import Optimizer
from minigrad.optim.sgd import SGD
