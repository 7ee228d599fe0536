"""dtype names as PyTorch spells them: ``minigrad.float32``, ``minigrad.long``, ...

minigrad's dtypes are NumPy's (``Tensor.dtype`` is a ``numpy.dtype``), so these names are
``numpy.dtype`` objects: ``x.dtype == mg.float32`` and ``mg.zeros(3, dtype=mg.int64)`` work,
and so do NumPy's own spellings (``np.float32``, ``"float32"``).
"""

import numpy as np

float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001 (PyTorch's name; shadows the builtin only here)
float = float32  # noqa: A001 (torch.float is float32)
int = int32  # noqa: A001 (torch.int is int32)

finfo, iinfo = np.finfo, np.iinfo


def is_dtype_name(name):
    """Whether NumPy reads ``name`` ("float32", "int64", ...) as a dtype: how ``to("cuda")``
    and ``to("float64")`` tell a device from a dtype."""
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def get_default_dtype():
    """The dtype of tensors made from Python floats: float32, as in PyTorch."""
    return float32


def is_floating_point(tensor):
    return tensor.dtype.kind == "f"


__all__ = ["bool", "double", "finfo", "float", "float16", "float32", "float64",
           "get_default_dtype", "half", "iinfo", "int", "int16", "int32", "int64", "int8",
           "is_dtype_name", "is_floating_point", "long", "short", "uint8"]
