"""What the kernel tests draw: window geometries that fit their input, and seeded arrays.

Shared by the tests of every kernel set (``test_numba_kernels.py``, ``test_quant_kernels.py``,
``test_cupy_kernels.py``), so each set is checked against the reference on the same cases.
"""

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

EXAMPLES = settings(max_examples=20, deadline=None, derandomize=True)
DTYPES = st.sampled_from([np.float32, np.float64])


def pairs(low, high):
    return st.tuples(st.integers(low, high), st.integers(low, high))


@st.composite
def windows(draw, dilation=True):
    """An (N, C, H, W) shape and a window (kernel, stride, padding, dilation) that fits it: each
    side is at least d(K - 1) + 1 - 2p, the smallest input that still gives one output."""
    kernel, stride, padding = draw(pairs(1, 4)), draw(pairs(1, 3)), draw(pairs(0, 2))
    dilation = draw(pairs(1, 2)) if dilation else (1, 1)
    h, w = (draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 11))
            for k, p, d in zip(kernel, padding, dilation))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), h, w)
    return shape, kernel, stride, padding, dilation


def random(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_same(ours, reference):
    """Same shape and dtype, values equal to 1e-5 of the reference's scale (sums can cancel)."""
    assert ours.shape == reference.shape and ours.dtype == reference.dtype
    finite = reference[np.isfinite(reference)]
    scale = np.abs(finite).max(initial=1.0)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5 * scale)
