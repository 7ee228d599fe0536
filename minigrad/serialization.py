"""Saving and loading state (model weights, optimizer state, ...) as one ``.npz`` file.

``save(obj, path)`` stores a nested structure of dicts (str keys), lists, tuples, Tensors,
NumPy arrays, NumPy scalars and the Python scalars int, float, str, bool, None.
``load(path)`` gives it back with the same types: Tensors as Tensors (on the CPU, or on
``map_location``, with ``requires_grad=False`` and no ``grad``), arrays as arrays, tuples as
tuples.

A model is saved as its ``state_dict``, never as the Module itself (``torch.save(model)``
pickles the class; minigrad stores no code): ``save(model.state_dict(), path)``, then
``model.load_state_dict(load(path))`` into a freshly built model. Optimizers, schedulers and
DataLoaders alike.

The file is an ordinary uncompressed zip, readable by ``np.load(path, allow_pickle=False)``:

    a0.npy, a1.npy, ...  every array, numbered in the order they are met walking ``obj``
    metadata.npy         UTF-8 JSON as a uint8 array:
                         {"format": "minigrad", "version": 1, "tree": <node>}

A node is the value itself for int, float, str, bool and None, and a tagged object otherwise:

    {"type": "dict",  "items": {key: node, ...}}
    {"type": "list",  "items": [node, ...]}       (and "tuple")
    {"type": "array", "entry": "a0", "dtype": "<f4", "shape": [2, 3]}
                                                  ("tensor" and "numpy_scalar" alike)

Subclasses come back as their base type (a namedtuple as a tuple, an OrderedDict as a dict),
and an array that occurs twice in ``obj`` is stored twice and loads as two arrays. Nothing is
ever unpickled, so loading a file cannot run code (``load``'s ``weights_only`` is accepted
for PyTorch's sake; either way the answer is the same). Writing is atomic: the file is written
under a temporary name in the same folder, flushed to disk, then renamed over ``path``, so
a crash never leaves a half-written file at ``path``.
"""

import json
import os
import uuid
import zipfile
import zlib

import numpy as np

from minigrad import backend
from minigrad.tensor import Tensor

FORMAT = "minigrad"
VERSION = 1
METADATA_ENTRY = "metadata"
ZIP_SIGNATURE = b"PK\x03\x04"  # the first bytes of a zip file, hence of an .npz
ARRAY_TYPES = {"array", "tensor", "numpy_scalar"}


# ----------------------------------------------------------------------------- save
def _array_reference(array, array_type, arrays, where):
    """Put ``array`` in ``arrays`` under the next free entry name and return its tree node."""
    if array.dtype.hasobject or array.dtype.names is not None:
        raise TypeError(f"save: cannot store the array at {where} with dtype {array.dtype}: "
                        f"object and structured arrays would need pickle")
    entry = f"a{len(arrays)}"
    arrays[entry] = array
    return {"type": array_type, "entry": entry, "dtype": array.dtype.str,
            "shape": list(array.shape)}


def _encode(obj, arrays, where):
    """The JSON tree node for ``obj``; its arrays are added to ``arrays`` (entry -> array)."""
    if isinstance(obj, Tensor):
        return _array_reference(obj.numpy(), "tensor", arrays, where)
    if isinstance(obj, np.ndarray):
        return _array_reference(obj, "array", arrays, where)
    # Before the Python scalars: np.float64 and np.str_ subclass float and str, but should
    # come back with their NumPy type.
    if isinstance(obj, np.generic):
        return _array_reference(np.asarray(obj), "numpy_scalar", arrays, where)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if callable(getattr(obj, "state_dict", None)):  # a Module, an optimizer, a DataLoader
        raise TypeError(f"save: cannot store the {type(obj).__name__} at {where}: minigrad "
                        "saves tensors and plain data, never whole objects (that would need "
                        "pickle); save its state instead, mg.save(model.state_dict(), path), "
                        "and load it into a newly built one: model.load_state_dict(mg.load(path))")
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"save: dict keys must be str, got {key!r} in {where}")
        return {"type": "dict",
                "items": {key: _encode(value, arrays, f"{where}[{key!r}]")
                          for key, value in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return {"type": "tuple" if isinstance(obj, tuple) else "list",
                "items": [_encode(value, arrays, f"{where}[{index}]")
                          for index, value in enumerate(obj)]}
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} at {where}")


def save(obj, path):
    """Write ``obj`` to ``path`` (exactly that name: no ``.npz`` is appended) atomically.

    The folder must exist. If anything fails, ``path`` keeps its previous content.
    """
    arrays = {}
    tree = _encode(obj, arrays, "obj")
    metadata = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    arrays[METADATA_ENTRY] = np.frombuffer(metadata.encode("utf-8"), dtype=np.uint8)

    atomic_write(path, lambda file: np.savez(file, **arrays), "save")


def atomic_write(path, write, caller):
    """Call ``write(file)`` on a new temporary file beside ``path``, flush it to disk, then
    rename it over ``path``: a crash at any point leaves ``path`` with its previous content.
    The folder must exist."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{caller}: folder {folder!r} does not exist (saving {path!r})")
    # Not tempfile.mkstemp: it creates files readable by the owner only, and after the rename
    # the saved file would keep those permissions; open(..., "xb") follows the umask.
    temp_path = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
    file = open(temp_path, "xb")
    try:
        with file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the rename makes it visible
        os.replace(temp_path, path)
    except BaseException:  # KeyboardInterrupt included: never leave the temporary file behind
        os.remove(temp_path)
        raise


# ----------------------------------------------------------------------------- load
def _read_entries(path):
    """Every entry of the .npz at ``path`` as {name: array}; ValueError if it cannot be read."""
    with open(path, "rb") as file:
        signature = file.read(len(ZIP_SIGNATURE))
    # Checked first so that np.load never falls back to its pickle path, whose error message
    # suggests loading the file unsafely.
    if signature != ZIP_SIGNATURE:
        raise ValueError(f"load: {path!r} is not an .npz file (it does not start with the zip "
                         f"signature; empty, or another format)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    # A truncated or damaged zip raises BadZipFile (also for a bad CRC) or EOFError; a mangled
    # .npy header inside it raises ValueError.
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise ValueError(f"load: {path!r} is truncated or corrupt ({type(error).__name__}: "
                         f"{error})") from error


def _read_tree(metadata, path):
    """The object tree from the metadata entry, after checking format and version."""
    if metadata is None:
        raise ValueError(f"load: {path!r} is not a minigrad file (no {METADATA_ENTRY!r} entry)")
    try:
        header = json.loads(metadata.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"load: {path!r} has unreadable metadata: {error}") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"load: {path!r} is not a minigrad file (its metadata has no "
                         f"\"format\": \"{FORMAT}\")")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"load: {path!r} has format version {version!r}; this minigrad reads "
                         f"versions up to {VERSION} (written by a newer minigrad?)")
    return header.get("tree")


def _load_array(node, entries, path):
    """The array that ``node`` refers to, checked against the dtype and shape it records."""
    entry = node.get("entry")
    if entry not in entries:
        raise ValueError(f"load: {path!r} is missing the array entry {entry!r} named in its "
                         f"metadata")
    array = entries[entry]
    expected_dtype, expected_shape = np.dtype(node["dtype"]), tuple(node["shape"])
    if array.dtype != expected_dtype or array.shape != expected_shape:
        raise ValueError(f"load: {path!r}: array {entry!r} has dtype {array.dtype} and shape "
                         f"{array.shape}, but the metadata says dtype {expected_dtype} and "
                         f"shape {expected_shape}")
    return array


def _decode(node, entries, path, device):
    """Rebuild the object that the tree ``node`` describes, its Tensors on ``device``."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    node_type = node.get("type") if isinstance(node, dict) else None
    if node_type in ARRAY_TYPES:
        array = _load_array(node, entries, path)
        if node_type == "tensor":
            return Tensor(backend.to_device(array, device))
        return array[()] if node_type == "numpy_scalar" else array
    if node_type == "dict":
        return {key: _decode(value, entries, path, device)
                for key, value in node["items"].items()}
    if node_type in ("list", "tuple"):
        items = [_decode(value, entries, path, device) for value in node["items"]]
        return tuple(items) if node_type == "tuple" else items
    raise ValueError(f"load: {path!r} has a malformed metadata node: {str(node)[:200]}")


def _map_location_device(map_location):
    """The device ``load`` puts Tensors on: "cpu" for None, else the device ``map_location``
    names ("cpu", "cuda", "cuda:0", a ``torch.device``-like object)."""
    if map_location is None:
        return "cpu"
    if isinstance(map_location, dict) or callable(map_location):
        raise TypeError(f"load: map_location must name a device ('cpu' or 'cuda'), got a "
                        f"{type(map_location).__name__}; PyTorch's remapping by dict or "
                        f"function has nothing to remap here, as the file records no devices")
    try:
        return backend.device(map_location)
    except ValueError as error:
        raise ValueError(f"load: map_location {map_location!r}: {error}") from None


def load(path, map_location=None, *, weights_only=None):
    """Read what ``save`` wrote at ``path``; its Tensors go to ``map_location`` (a device name,
    as in ``torch.load``; None: the CPU, as the file records no device). NumPy arrays stay
    NumPy arrays. ``weights_only`` is accepted for PyTorch's sake and changes nothing: loading
    never unpickles, so a file cannot run code whatever it says.

    Raises ValueError, naming the path and the reason, for a truncated or corrupt file, a
    file that is not a minigrad .npz, a newer format version, or arrays that do not match
    the metadata; FileNotFoundError if there is no file.
    """
    device = _map_location_device(map_location)
    path = os.fspath(path)
    entries = _read_entries(path)
    tree = _read_tree(entries.pop(METADATA_ENTRY, None), path)
    try:
        return _decode(tree, entries, path, device)
    except (KeyError, TypeError, AttributeError) as error:  # a node lacks a field or has a bad one
        raise ValueError(f"load: {path!r} has malformed metadata ({error!r})") from error
