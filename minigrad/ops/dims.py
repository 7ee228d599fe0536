"""Naming dimensions: PyTorch's ``dim``/``keepdim`` and NumPy's ``axis``/``keepdims``.

Every op that takes a dimension is written with PyTorch's names and accepts NumPy's as well,
through one decorator, ``dim_spellings``. So ``x.sum(dim=1, keepdim=True)`` and
``x.sum(axis=1, keepdims=True)`` are the same call, and giving both spellings of one argument
is refused, naming both. ``normalize_dims`` turns a ``dim`` (None, an int or a tuple, negative
counting from the end) into sorted non-negative dims, and names the dim and the shape when one
is out of range.
"""

import functools
import inspect

SPELLINGS = {"axis": "dim", "keepdims": "keepdim"}  # NumPy's name -> PyTorch's name


def dim_spellings(function):
    """Let ``function``, written with ``dim``/``keepdim`` parameters, be called with NumPy's
    ``axis``/``keepdims`` too (as keywords); both spellings at once is a TypeError."""
    parameters = list(inspect.signature(function).parameters)
    position = {torch_name: parameters.index(torch_name)
                for torch_name in SPELLINGS.values() if torch_name in parameters}
    renames = {numpy_name: torch_name for numpy_name, torch_name in SPELLINGS.items()
               if torch_name in position}

    @functools.wraps(function)
    def call(*args, **kwargs):
        for numpy_name, torch_name in renames.items():
            if numpy_name not in kwargs:
                continue
            if torch_name in kwargs or len(args) > position[torch_name]:
                raise TypeError(f"{function.__name__}: got both {torch_name} and {numpy_name} "
                                f"(the same argument in PyTorch's and NumPy's spelling); "
                                f"give one")
            kwargs[torch_name] = kwargs.pop(numpy_name)
        return function(*args, **kwargs)

    return call


def normalize_dims(dim, shape, op="reduce", new=0):
    """``dim`` as a sorted tuple of non-negative dims of a tensor of ``shape`` (all of them for
    None); ``op`` names the caller in the error for a dim outside [-ndim, ndim). A 0-d tensor
    accepts dim 0 and -1, as in PyTorch. ``new=1``: the dim is where a new dim will go (as in
    unsqueeze and stack), so it ranges over ndim + 1 places."""
    ndim = len(shape) + new
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    bound = max(ndim, 1)
    for d in dims:
        if not isinstance(d, int):
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
        if not -bound <= d < bound:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor of shape "
                             f"{tuple(shape)} (expected a dim in [{-bound}, {bound - 1}])")
    if len(set(d % bound for d in dims)) != len(dims):
        raise ValueError(f"{op}: dim {dim!r} names a dimension twice")
    return tuple(sorted(d % bound for d in dims)) if ndim else ()


def normalize_dim(dim, shape, op, new=0):
    """One dim as a non-negative int (``normalize_dims`` for ops that take exactly one)."""
    if not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    return (normalize_dims(dim, shape, op, new) or (0,))[0]
