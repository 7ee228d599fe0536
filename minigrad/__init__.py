"""minigrad: a small, readable deep-learning framework written from scratch on NumPy.

    import minigrad as mg
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x ** 2).sum()
    y.backward()
    x.grad            # tensor([2., 4., 6.])

Public API: ``Tensor`` and the constructors (``minigrad.creation``), grad mode (``no_grad``,
``enable_grad``, ``inference_mode``, ``is_grad_enabled``), anomaly detection
(``detect_anomaly``: the first op that turns finite numbers into NaN or inf raises), dtype
names (``mg.float32``, ``mg.long``, ...: ``minigrad.dtypes``), ``device``, ``manual_seed``,
``save``/``load``, and every op of ``minigrad.ops`` as a function.

Subpackages and modules are attributes too, imported on first use (so ``import minigrad``
stays fast): ``mg.nn``, ``mg.optim``, ``mg.data``, ``mg.train``, ``mg.tune``, ``mg.metrics``,
``mg.models`` for training; ``mg.prune``, ``mg.quant``, ``mg.distill``, ``mg.compress``,
``mg.parallel``, ``mg.sensitivity`` for making models smaller and faster; ``mg.onnx`` for
exporting them as ONNX files; ``mg.profiler``, ``mg.viz``, ``mg.timing``, ``mg.plot``,
``mg.report``, ``mg.testing``, ``mg.cli`` for looking inside. ``from minigrad import prune``
works as well.

``MINIGRAD_PROFILE=1`` in the environment profiles the whole process (``minigrad.profiler``)
and prints the table to stderr at exit.
"""

import importlib
import os

from minigrad.anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from minigrad.autograd import Function, enable_grad, inference_mode, is_grad_enabled, no_grad
from minigrad.backend import device
from minigrad.creation import (arange, empty, empty_like, eye, full, full_like, linspace,
                               logspace, ones, ones_like, rand, rand_like, randint, randn,
                               randn_like, randperm, tril_indices, triu_indices, zeros,
                               zeros_like)
from minigrad.dtypes import *  # noqa: F401,F403 (dtypes.__all__: float32, int64, ...)
from minigrad.ops import *  # noqa: F401,F403 (ops.__all__: the op functions are public API)
from minigrad.random import manual_seed
from minigrad.serialization import load, save
from minigrad.tensor import Tensor, as_tensor, from_numpy, tensor

__version__ = "0.1.0"

SUBMODULES = ("cli", "compress", "data", "distill", "metrics", "models", "nn", "onnx", "optim",
              "parallel", "plot", "profiler", "prune", "quant", "report", "sensitivity",
              "testing", "timing", "train", "tune", "viz")


def __getattr__(name):
    """``mg.nn`` and the other ``SUBMODULES``, imported the first time they are asked for
    (PEP 562); the import stores the module here, so this runs once per name."""
    if name in SUBMODULES:
        return importlib.import_module(f"minigrad.{name}")
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(SUBMODULES))


# Checked here, at the top: the engine knows nothing of the profiler, which registers itself.
if os.environ.get("MINIGRAD_PROFILE", "") not in ("", "0"):
    from minigrad.profiler import profile_process

    profile_process()
