"""The backend seams: array modules and devices, kernel-set selection, and the reference
kernels' own algebra (col2im is the adjoint of im2col)."""

import sys

import numpy as np
import pytest

from minigrad import backend
from minigrad.backend import geometry, numba_cpu, numpy_ref


def test_array_module_and_device_of_numpy_arrays():
    assert backend.array_module(np.zeros(2)) is np
    assert backend.device_of(np.zeros(2)) == "cpu"
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        backend.to_device(np.zeros(2), "gpu")


def test_synchronize_waits_for_the_gpu_only(monkeypatch):
    waits = []

    class FakeCupy:
        class cuda:
            class Device:
                def synchronize(self):
                    waits.append("cuda")

    monkeypatch.setattr(backend, "cupy_module", lambda: FakeCupy)
    backend.synchronize("cpu")
    assert waits == []  # the CPU has nothing queued
    backend.synchronize("cuda")
    assert waits == ["cuda"]
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        backend.synchronize("gpu")


def test_kernel_sets_are_chosen_by_name_or_environment(monkeypatch):
    monkeypatch.setattr(backend, "_cpu_kernels", None)  # the active set comes back afterwards
    assert backend.set_cpu_kernels("numpy") is numpy_ref
    assert backend.kernels("cpu") is numpy_ref
    assert backend.set_cpu_kernels("numba") is numba_cpu
    assert backend.kernels("cpu") is numba_cpu
    with pytest.raises(ValueError, match=r"unknown CPU kernel set 'fortran': expected one of "
                                         r"\['numba', 'numpy'\]"):
        backend.set_cpu_kernels("fortran")
    monkeypatch.setattr(backend, "_cpu_kernels", None)
    monkeypatch.setenv("MINIGRAD_CPU_KERNELS", "fortran")
    with pytest.raises(ValueError, match="unknown CPU kernel set 'fortran'"):
        backend.kernels("cpu")
    monkeypatch.setenv("MINIGRAD_CPU_KERNELS", "numpy")
    assert backend.kernels("cpu") is numpy_ref


def test_the_default_cpu_kernels_are_numba_when_it_imports(monkeypatch):
    monkeypatch.delenv("MINIGRAD_CPU_KERNELS", raising=False)
    monkeypatch.setattr(backend, "_cpu_kernels", None)
    assert backend.kernels("cpu") is numba_cpu
    monkeypatch.setattr(backend, "_cpu_kernels", None)
    monkeypatch.setitem(sys.modules, "numba", None)  # makes `import numba` fail
    assert backend.kernels("cpu") is numpy_ref


@pytest.mark.parametrize("geometry", [
    ((3, 3), (1, 1), (0, 0), (1, 1)),
    ((3, 2), (2, 1), (1, 2), (1, 1)),
    ((2, 3), (1, 2), (2, 0), (2, 2)),
])
def test_col2im_is_the_adjoint_of_im2col(geometry):
    """<im2col(x), c> = <x, col2im(c)> for all x, c: the defining property of an adjoint, and
    exactly what makes conv2d_backward_input the gradient of conv2d_forward."""
    kernel, stride, padding, dilation = geometry
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    cols, _ = numpy_ref.im2col(x, kernel, stride, padding, dilation)
    c = rng.standard_normal(cols.shape)
    back = numpy_ref.col2im(c, x.shape, kernel, stride, padding, dilation)
    assert np.sum(cols * c) == pytest.approx(np.sum(x * back), rel=1e-12)


def test_output_size_formula_and_error():
    assert geometry.output_size(28, 5, 1, 2, 1) == 28
    assert geometry.output_size(7, 3, 2, 1, 1) == 4
    assert geometry.output_size(8, 3, 1, 0, 2) == 4
    with pytest.raises(ValueError, match="window of size 5 .* does not fit an input of size 3"):
        geometry.output_size(3, 5, 1, 0, 1)


def test_conv2d_forward_equals_the_definition_written_as_loops():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 2, 3))
    stride, padding, dilation = (2, 1), (1, 1), (1, 1)
    out = numpy_ref.conv2d_forward(x, w, stride, padding, dilation)
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros(out.shape)
    for o in range(3):
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                window = x_pad[0, :, i * 2:i * 2 + 2, j:j + 3]
                expected[0, o, i, j] = np.sum(window * w[o])
    np.testing.assert_allclose(out, expected, rtol=1e-12)
