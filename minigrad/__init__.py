"""minigrad: a small, readable deep-learning framework written from scratch on NumPy.

    import minigrad as mg
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x ** 2).sum()
    y.backward()
    x.grad            # tensor([2., 4., 6.])

Public API: ``Tensor`` and its constructors, grad mode (``no_grad``, ``enable_grad``,
``is_grad_enabled``), ``manual_seed``, ``save``/``load``, and every op of ``minigrad.ops``
as a function. Subpackages and modules, imported by name (``from minigrad import prune``):
training ``nn``, ``optim``, ``data``, ``train``, ``tune``, ``metrics``, ``models``; making
models smaller and faster ``prune``, ``quant``, ``distill``, ``compress``, ``parallel``;
looking inside ``profiler``, ``viz``, ``timing``, ``plot``, ``report``, ``testing``.

``MINIGRAD_PROFILE=1`` in the environment profiles the whole process (``minigrad.profiler``)
and prints the table to stderr at exit.
"""

import os

from minigrad.autograd import Function, enable_grad, is_grad_enabled, no_grad
from minigrad.ops import *  # noqa: F401,F403 (ops.__all__: the op functions are public API)
from minigrad.random import manual_seed
from minigrad.serialization import load, save
from minigrad.tensor import (Tensor, arange, as_tensor, full, full_like, ones, ones_like, rand,
                             rand_like, randn, randn_like, tensor, zeros, zeros_like)

__version__ = "0.1.0"

# Checked here, at the top: the engine knows nothing of the profiler, which registers itself.
if os.environ.get("MINIGRAD_PROFILE", "") not in ("", "0"):
    from minigrad.profiler import profile_process

    profile_process()
