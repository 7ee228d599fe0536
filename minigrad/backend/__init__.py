"""Where arrays live: the device seam.

Every Tensor wraps one array: a NumPy ``ndarray`` on the CPU or a CuPy ``ndarray`` on a GPU.
Ops never import NumPy or CuPy directly to do their math; they ask for the *array module*
of their inputs (``xp = array_module(a)``) and call ``xp.exp``, ``xp.matmul``, ... on it, so the
same ``forward``/``backward`` code runs on both devices.

CuPy is imported lazily, the first time a GPU array or device is asked for, so minigrad works
(and its tests run) on machines without CuPy or without a GPU.

Heavy kernels (matmul, convolution, pooling, sparse and integer products) sit behind a second
seam: ``kernels(device)`` returns a kernel set, a module defining every function of the contract
in ``contract.py`` (``KernelSet``: names, parameters and shapes). ``numpy_ref`` is the readable
reference and the test oracle (it also runs on CuPy arrays). ``cupy_gpu`` holds the same kernels
in CUDA for CuPy arrays (imported only once a GPU is used). Faster CPU kernel sets register in
``CPU_KERNEL_SETS`` and are chosen with ``set_cpu_kernels(name)`` or the environment variable
``MINIGRAD_CPU_KERNELS``. Without either, the CPU uses ``"numba"`` (the ``numba_cpu`` package,
the reference's functions compiled with Numba) when Numba imports, else ``"numpy"``.

The package is the lowest floor of minigrad and imports nothing above it. Inside it:
this module (devices and dispatch), then ``geometry`` (the window index math every set
shares) and ``fixed_point`` (integer arithmetic: 8-bit operands, int32 accumulators,
requantization) and ``threads`` (``set_num_threads``: BLAS's and Numba's threads), then
``numpy_ref``, then the sets built on it, ``numba_cpu`` and ``cupy_gpu``.
"""

import importlib
import os

import numpy as np

from minigrad.backend.threads import get_num_threads, set_num_threads  # noqa: F401

DEVICES = ("cpu", "cuda")

_cupy = None


def cupy_module():
    """Return the ``cupy`` module, importing it on first use.

    Raises RuntimeError saying what is missing when CuPy is not installed or no GPU is visible.
    """
    global _cupy
    if _cupy is None:
        try:
            import cupy
        except ImportError as error:
            raise RuntimeError(
                "device 'cuda' needs CuPy (cupy-cuda12x): .venv/bin/pip install -e '.[cuda]'"
            ) from error
        try:
            cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # CuPy raises its own CUDARuntimeError without a driver
            raise RuntimeError(f"device 'cuda' is not available: {error}") from error
        _cupy = cupy
    return _cupy


def is_cupy_array(array):
    """True for a CuPy array, without importing CuPy when it has not been loaded."""
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def array_module(array):
    """The module (``numpy`` or ``cupy``) that owns ``array``: ``xp = array_module(a)``."""
    return _cupy if is_cupy_array(array) else np


def lowest_value(dtype):
    """The value that never wins a max: -inf for floats, the minimum of an integer dtype (what
    max pooling pads with)."""
    dtype = np.dtype(dtype)
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def all_finite(array):
    """True when no element of ``array`` is NaN or infinite."""
    return bool(array_module(array).isfinite(array).all())


def device_of(array):
    """``"cuda"`` for a CuPy array, ``"cpu"`` for anything else."""
    return "cuda" if is_cupy_array(array) else "cpu"


def check_device(device):
    """Validate a device name and return it (``"cpu"`` or ``"cuda"``)."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return device


class device(str):
    """A device, as ``torch.device``: ``device("cuda")``, ``device("cuda:0")``,
    ``device("cpu")``. It is the device's name as a string ("cpu" or "cuda"), so it compares
    equal to ``Tensor.device`` and is accepted wherever a device name is; ``.type`` and
    ``.index`` as PyTorch's (minigrad uses one GPU: index 0)."""

    def __new__(cls, type, index=None):
        name, _, number = str(type).partition(":")
        if number:
            index = int(number)
        if index not in (None, 0):
            raise ValueError(f"device: minigrad uses one GPU, index 0; got {type!r} "
                             f"index {index}")
        self = super().__new__(cls, check_device(name))
        self.index = index
        return self

    @property
    def type(self):
        return str(self)


def to_device(array, device):
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    if check_device(device) == device_of(array):
        return array
    if device == "cuda":
        return cupy_module().asarray(array)
    return array.get()


def synchronize(device):
    """Wait until the work queued on ``device`` has finished (``torch.cuda.synchronize``). A
    GPU call returns as soon as the work is queued, so timing it needs this on both sides;
    on the CPU every call has finished when it returns, and this does nothing."""
    if check_device(device) == "cuda":
        cupy_module().cuda.Device().synchronize()


# Kernel sets for the CPU: name -> module path.
CPU_KERNEL_SETS = {"numpy": "minigrad.backend.numpy_ref", "numba": "minigrad.backend.numba_cpu"}
_cpu_kernels = None


def kernel_set(name):
    """The CPU kernel set called ``name`` (see ``CPU_KERNEL_SETS``), without choosing it: to
    compare sets, or to run the reference where exactness matters."""
    if name not in CPU_KERNEL_SETS:
        raise ValueError(f"unknown CPU kernel set {name!r}: expected one of "
                         f"{sorted(CPU_KERNEL_SETS)}")
    return importlib.import_module(CPU_KERNEL_SETS[name])


def set_cpu_kernels(name):
    """Choose the CPU kernel set by name (see ``CPU_KERNEL_SETS``); returns the module."""
    global _cpu_kernels
    _cpu_kernels = kernel_set(name)
    return _cpu_kernels


def default_cpu_kernels():
    """The CPU kernel set used when none was chosen: "numba" when Numba imports, else "numpy"."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return "numpy"
    return "numba"


def kernels(device="cpu"):
    """The kernel set for ``device`` (a module implementing ``contract.KernelSet``): the chosen
    CPU set, or the CUDA kernels on a GPU."""
    if check_device(device) == "cuda":
        return importlib.import_module("minigrad.backend.cupy_gpu")
    if _cpu_kernels is None:
        set_cpu_kernels(os.environ.get("MINIGRAD_CPU_KERNELS") or default_cpu_kernels())
    return _cpu_kernels


def kernels_for(array):
    """The kernel set to run on ``array``: its device's (``kernels``), except that float16 on
    the CPU runs the NumPy reference kernels, since Numba has no float16 type."""
    device = device_of(array)
    if device == "cpu" and array.dtype == np.float16:
        return kernel_set("numpy")
    return kernels(device)
