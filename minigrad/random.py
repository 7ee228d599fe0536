"""One source of randomness for all of minigrad.

``manual_seed(s)`` reseeds a single ``numpy.random.Generator`` (PCG64); ``randn``, ``rand``,
weight initialisation, dropout and data shuffling all draw from ``generator()``, so one call
makes a whole run repeatable.
"""

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed minigrad's global generator and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator():
    """The global ``numpy.random.Generator`` every random minigrad op draws from."""
    return _generator
