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
a crash never leaves a half-written file at ``path``; a process killed mid-write leaves its
temporary file, which the next save into that folder removes once it is older than
``STALE_TEMPORARY_AGE_S``.

A damaged or crafted file is refused with one ValueError that names the path and says it is
truncated or corrupt (and why), whatever part of it is damaged: the zip structure, an array's
header (one claiming more bytes than the entry holds is refused before anything is
allocated), or the metadata (nested past ``MAX_DEPTH``, or naming what is not there).
"""

import io
import json
import lzma
import os
import re
import struct
import time
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
TEMPORARY_SUFFIX = ".minigrad-tmp"
STALE_TEMPORARY_AGE_S = 60.0  # a temporary file older than this belongs to a killed save
MAX_DEPTH = 200  # metadata nested deeper than this is refused (a crafted file)
# What reading a damaged zip can raise: zipfile's own errors, those of its decompressors
# (a flipped compression-method field picks deflate, bzip2 or lzma), a flipped encryption
# flag (RuntimeError), an unknown method (NotImplementedError), and short reads.
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                    ValueError, KeyError, NotImplementedError, RuntimeError, struct.error,
                    OverflowError, UnicodeDecodeError)


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
    remove_stale_temporaries(folder)
    # Not tempfile.mkstemp: it creates files readable by the owner only, and after the rename
    # the saved file would keep those permissions; open(..., "xb") follows the umask.
    temp_path = os.path.join(
        folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")
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


_TEMPORARY_NAME = re.compile(r"\..+\.[0-9a-f]{8}" + re.escape(TEMPORARY_SUFFIX))


def remove_stale_temporaries(folder):
    """Delete the temporary files ``atomic_write`` leaves in ``folder`` when its process is
    killed mid-write (``.<name>.<8 hex digits>.minigrad-tmp``), those last modified more than
    ``STALE_TEMPORARY_AGE_S`` seconds ago: a save still writing keeps its file fresh. Files
    of other names are never touched; one that vanishes meanwhile (another save removed it)
    is skipped."""
    now = time.time()
    for entry in os.scandir(folder):
        if not _TEMPORARY_NAME.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMPORARY_AGE_S:
                os.remove(entry.path)
        except FileNotFoundError:
            pass


# ----------------------------------------------------------------------------- load
def _corrupt(path, reason):
    """The loader's one error for a damaged or crafted file."""
    return ValueError(f"load: {path!r} is truncated or corrupt ({reason})")


def _read_npy(data, name, path):
    """The array in the bytes ``data`` of .npy entry ``name``, read without pickle; its header
    is checked against the bytes that follow it before any memory is taken for the array."""
    file = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(file)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(file)
    except ValueError as error:
        raise _corrupt(path, f"entry {name!r} has a damaged .npy header: {error}") from error
    if dtype.hasobject:
        raise _corrupt(path, f"entry {name!r} holds Python objects, which would need pickle")
    count = int(np.prod(shape, dtype=object))
    if count * dtype.itemsize != len(data) - file.tell():
        raise _corrupt(path, f"entry {name!r} claims {count * dtype.itemsize} bytes of "
                             f"{dtype} {shape}, but holds {len(data) - file.tell()}")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=file.tell())
    return array.reshape(shape, order="F" if fortran_order else "C").copy()


def _listed_entry_count(path):
    """The number of entries the zip's end record lists (None when the file ends in a comment
    or a zip64 record, which ``save`` never writes). A damaged length field in the central
    directory can swallow the records after it, which zipfile then never sees: this count
    tells."""
    end = struct.Struct("<4s4H2LH")  # signature, disk numbers, entry counts, sizes, comment
    with open(path, "rb") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() < end.size:
            return None
        file.seek(-end.size, os.SEEK_END)
        signature, _, _, _, total, _, _, comment = end.unpack(file.read(end.size))
    if signature != b"PK\x05\x06" or comment or total == 0xFFFF:
        return None
    return total


def _read_entries(path):
    """Every ``.npy`` entry of the .npz at ``path`` as {name without .npy: array}; the
    loader's ValueError if it cannot be read (zipfile checks each entry's CRC-32)."""
    with open(path, "rb") as file:
        signature = file.read(len(ZIP_SIGNATURE))
    if signature != ZIP_SIGNATURE:
        raise ValueError(f"load: {path!r} is not an .npz file, or is truncated or corrupt (it "
                         "does not start with the zip signature; empty, or another format)")
    try:
        # Every entry is read, .npy or not, so that each one's name and CRC-32 are checked.
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():  # stored, as save writes them: no inflating
                if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                    raise _corrupt(path, f"entry {info.filename!r} is compressed ({info.file_size} "
                                         f"bytes from {info.compress_size}); minigrad stores "
                                         "its entries uncompressed")
            raw = {name: archive.read(name) for name in archive.namelist()}
    except _ZIP_READ_ERRORS as error:
        raise _corrupt(path, f"{type(error).__name__}: {error}") from error
    listed = _listed_entry_count(path)
    if listed is not None and listed != len(raw):
        raise _corrupt(path, f"its end record lists {listed} entries, its central directory "
                             f"holds {len(raw)}")
    return {name.removesuffix(".npy"): _read_npy(data, name, path)
            for name, data in raw.items() if name.endswith(".npy")}


def _read_tree(metadata, path):
    """The object tree from the metadata entry, after checking format and version."""
    if metadata is None:
        raise ValueError(f"load: {path!r} is not a minigrad file (no {METADATA_ENTRY!r} entry)")
    try:
        header = json.loads(metadata.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise _corrupt(path, f"unreadable metadata: {type(error).__name__}: {error}") from error
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
    if not isinstance(entry, str) or entry not in entries:
        raise _corrupt(path, f"the array entry {entry!r} named in its metadata is missing")
    array = entries[entry]
    expected_dtype, expected_shape = np.dtype(node["dtype"]), tuple(node["shape"])
    if array.dtype != expected_dtype or array.shape != expected_shape:
        raise _corrupt(path, f"array {entry!r} has dtype {array.dtype} and shape "
                             f"{array.shape}, but the metadata says dtype {expected_dtype} and "
                             f"shape {expected_shape}")
    return array


def _decode(node, entries, path, device, depth=0):
    """Rebuild the object that the tree ``node`` describes, its Tensors on ``device``."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if depth > MAX_DEPTH:
        raise _corrupt(path, f"its metadata nests deeper than {MAX_DEPTH} levels")
    node_type = node.get("type") if isinstance(node, dict) else None
    if node_type in ARRAY_TYPES:
        array = _load_array(node, entries, path)
        if node_type == "tensor":
            return Tensor(backend.to_device(array, device))
        return array[()] if node_type == "numpy_scalar" else array
    if node_type == "dict":
        return {key: _decode(value, entries, path, device, depth + 1)
                for key, value in node["items"].items()}
    if node_type in ("list", "tuple"):
        items = [_decode(value, entries, path, device, depth + 1) for value in node["items"]]
        return tuple(items) if node_type == "tuple" else items
    raise _corrupt(path, f"a malformed metadata node: {str(node)[:200]}")


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
    # A node that lacks a field or has a bad one (np.dtype of a bad string: TypeError).
    except (KeyError, TypeError, AttributeError) as error:
        raise _corrupt(path, f"malformed metadata: {error!r}") from error
