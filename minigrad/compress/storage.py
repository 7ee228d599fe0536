"""The Deep Compression storage format: a pruned, k-means-shared model in as few bytes as its
information needs, written to one file and read back exactly (Han, Mao & Dally 2016).

A layer whose weight is shared by ``quant.kmeans_share`` (after pruning) is stored as

    codebook   the k = 2^b float32 centroids
    values     the cluster index of each nonzero weight, b bits each      (8 conv, 5 fc)
    gaps       the nonzero positions as relative indices, b_i bits each   (8 conv, 5 fc;
               ``relative_index``: zeros skipped, with escapes)

and each of the two symbol streams is Huffman-coded when that is smaller than its fixed-width
packing, code table included (``huffman``). Every other tensor of the state dict (biases,
layers left unshared) is stored as it is. Decoding gives back the weight exactly:
``w = 0; w.flat[positions] = codebook[values]``.

The file is the whole accounting, nothing left out:

    b"MGDC", version (1 byte), header length (uint32), CRC-32 of what follows (uint32),
    header (zlib-compressed JSON: names, shapes, bit widths, stream sizes),
    body (codebooks, code tables, packed streams and plain tensors, in header order)

so ``CompressedModel.nbytes()`` adds up to the file's size, and a damaged file fails its
CRC and is refused before anything is decoded. A file damaged where the CRC does not reach
(the preamble) or crafted with a valid CRC is refused with the same ValueError, naming the
path and saying it is truncated or corrupt: every size it claims is checked against the
bytes there before it is read or allocated.
"""

import json
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from minigrad import backend, nn
from minigrad.compress import huffman, relative_index
from minigrad.quant.weight_sharing import codebook, shared_modules, shared_tensors
from minigrad.serialization import atomic_write

MAGIC = b"MGDC"
VERSION = 1
PREAMBLE = struct.Struct("<4sBII")  # magic, version, header length, CRC-32


def default_index_bits(module):
    """Han et al.'s widths for relative indices: 8 bits in a convolution, 5 in a Linear."""
    return 8 if isinstance(module, nn.Conv2d) else 5


# ----------------------------------------------------------------------------- streams
@dataclass
class Stream:
    """``count`` symbols of ``bits`` bits each, packed at that fixed width (``lengths`` None)
    or Huffman-coded with the code ``lengths`` (one per symbol of the 2^bits alphabet)."""

    count: int
    bits: int
    payload: np.ndarray
    lengths: np.ndarray = None

    @property
    def table_nbytes(self):
        return 0 if self.lengths is None else huffman.table_bytes(2**self.bits)

    @property
    def nbytes(self):
        """The stream's bytes in the file: code table and payload."""
        return self.table_nbytes + self.payload.size

    def to_bytes(self):
        table = b"" if self.lengths is None else _pack_nibbles(self.lengths)
        return table + self.payload.tobytes()


def encode_stream(symbols, bits, entropy_coding=True):
    """The smaller of the fixed-width packing and (when ``entropy_coding``) the Huffman code
    of ``symbols``, each in [0, 2^bits)."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= 2**bits):
        raise ValueError(f"encode_stream: symbols must lie in [0, {2**bits}) for {bits} bits")
    # Each symbol's bits, most significant first, packed 8 to a byte.
    fixed = Stream(len(symbols), bits, np.packbits(
        (symbols[:, None] >> np.arange(bits - 1, -1, -1)) & 1))
    coded = huffman.encode(symbols, 2**bits) if entropy_coding else None
    if coded is not None:
        lengths, payload, _ = coded
        coded = Stream(len(symbols), bits, payload, lengths)
        if coded.nbytes < fixed.nbytes:  # the code table counts
            return coded
    return fixed


def decode_stream(stream):
    """The symbols of a Stream, as an int64 array."""
    if stream.lengths is not None:
        return huffman.decode(stream.lengths, stream.payload, stream.count)
    bits = np.unpackbits(stream.payload)[:stream.count * stream.bits]
    return bits.reshape(stream.count, stream.bits).astype(np.int64) @ (
        1 << np.arange(stream.bits - 1, -1, -1))


def _pack_nibbles(lengths):
    """Code lengths (each < 16) packed two to a byte."""
    padded = np.append(lengths, 0) if len(lengths) % 2 else lengths
    return ((padded[0::2] << 4) | padded[1::2]).astype(np.uint8).tobytes()


def _unpack_nibbles(data, count):
    data = np.frombuffer(data, dtype=np.uint8)
    return np.stack([data >> 4, data & 15], axis=1).ravel()[:count]


# ----------------------------------------------------------------------------- layers
@dataclass
class CompressedLayer:
    """One k-means-shared weight: ``name`` is its module's path (the tensor is
    ``<name>.weight``); ``codebook`` the float32 centroids; ``values`` and ``gaps`` the two
    coded streams."""

    name: str
    shape: tuple
    codebook: np.ndarray
    values: Stream
    gaps: Stream

    @property
    def nonzeros(self):
        return self.values.count

    @property
    def nbytes(self):
        """The layer's bytes in the file: codebook and both streams."""
        return self.codebook.nbytes + self.values.nbytes + self.gaps.nbytes

    def weight(self):
        """The dense weight, exactly as the shared layer computed it."""
        positions = relative_index.decode(decode_stream(self.gaps), self.gaps.bits)
        weight = np.zeros(int(np.prod(self.shape)), dtype=self.codebook.dtype)
        weight[positions] = self.codebook[decode_stream(self.values)]
        return weight.reshape(self.shape)


def compress_layer(name, module, value_bits, index_bits, entropy_coding=True):
    centroids, indices = codebook(module)
    mask = shared_tensors(module).get("mask")
    kept = (np.ones(indices.shape, dtype=bool) if mask is None
            else backend.to_device(mask.data, "cpu") != 0)
    positions = np.flatnonzero(kept)
    return CompressedLayer(
        name, tuple(indices.shape), centroids.astype(np.float32),
        encode_stream(indices.ravel()[positions], value_bits, entropy_coding),
        encode_stream(relative_index.encode(positions, index_bits), index_bits,
                      entropy_coding))


# ----------------------------------------------------------------------------- models
@dataclass
class CompressedModel:
    """The compressed layers and every other tensor of the state dict (``plain``)."""

    layers: list
    plain: dict

    def state_dict(self):
        """A plain state dict (dense weights) for a fresh model of the same architecture."""
        state = dict(self.plain)
        state.update({f"{layer.name}.weight": layer.weight() for layer in self.layers})
        return state

    def _header(self):
        return zlib.compress(json.dumps({
            "layers": [{"name": layer.name, "shape": list(layer.shape),
                        "codebook": len(layer.codebook),
                        **{key: {"count": s.count, "bits": s.bits, "bytes": s.payload.size,
                                 "huffman": s.lengths is not None}
                           for key, s in (("values", layer.values), ("gaps", layer.gaps))}}
                       for layer in self.layers],
            "plain": [{"name": name, "shape": list(array.shape), "dtype": array.dtype.str}
                      for name, array in self.plain.items()]}).encode("utf-8"), 9)

    def nbytes(self):
        """Bytes by part: "codes" (cluster indices), "indices" (relative positions),
        "codebooks", "Huffman tables", "plain tensors", "header". They add up to the
        file's size."""
        layers = self.layers
        return {
            "codes": sum(layer.values.payload.size for layer in layers),
            "indices": sum(layer.gaps.payload.size for layer in layers),
            "codebooks": sum(layer.codebook.nbytes for layer in layers),
            "Huffman tables": sum(s.table_nbytes for layer in layers
                                  for s in (layer.values, layer.gaps)),
            "plain tensors": sum(array.nbytes for array in self.plain.values()),
            "header": PREAMBLE.size + len(self._header()),
        }

    def to_bytes(self):
        header = self._header()
        body = b"".join([*(layer.codebook.tobytes() + layer.values.to_bytes()
                           + layer.gaps.to_bytes() for layer in self.layers),
                         *(np.ascontiguousarray(a).tobytes() for a in self.plain.values())])
        crc = zlib.crc32(header + body)
        return PREAMBLE.pack(MAGIC, VERSION, len(header), crc) + header + body


def compress(model, index_bits=default_index_bits, entropy_coding=True):
    """The CompressedModel of ``model``: every module whose ``weight`` is k-means shared
    (``quant.kmeans_share``, usually after pruning) becomes a CompressedLayer with relative
    indices of ``index_bits(module)`` bits; the rest of the state dict is kept as it is.
    ``entropy_coding=False`` keeps the streams at fixed width (the stage before Huffman)."""
    layers, shared_names = [], set()
    for name, module, sharing in shared_modules(model):
        layers.append(compress_layer(name, module, sharing.bits, index_bits(module),
                                     entropy_coding))
        prefix = f"{name}." if name else ""
        shared_names.update(prefix + stored for stored in module.parametrizations["weight"].stored)
    if not layers:
        raise ValueError("compress: no layer of the model is k-means shared; call "
                         "quant.kmeans_share(module, bits=...) on its layers first")
    plain = {key: backend.to_device(value.data, "cpu")
             for key, value in model.state_dict().items() if key not in shared_names}
    return CompressedModel(layers, plain)


def save_compressed(model, path, index_bits=default_index_bits):
    """Compress ``model`` (see ``compress``) and write it to ``path`` atomically. Returns the
    CompressedModel; its ``nbytes()`` add up to the file's size."""
    compressed = compress(model, index_bits)
    data = compressed.to_bytes()
    atomic_write(path, lambda file: file.write(data), "save_compressed")
    return compressed


class _CorruptPart(ValueError):
    """A part of a compressed file that does not hold what the header says (the reason)."""


# What a crafted header (valid CRC, wrong contents) makes the parsing raise: a missing key, a
# value of the wrong type or out of range, a header that is not zlib or JSON, or nesting
# deep enough to exhaust the JSON parser's recursion.
_HEADER_ERRORS = (_CorruptPart, KeyError, TypeError, ValueError, IndexError, OverflowError,
                  zlib.error, RecursionError)


def load_compressed(path):
    """The CompressedModel in the file at ``path``; load it into a fresh model of the same
    architecture with ``model.load_state_dict(compressed.state_dict())``. A file that is not
    one, of another version, or damaged (CRC mismatch, truncated) raises ValueError naming
    the path; for a damaged file it says "truncated or corrupt"."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    if len(data) < PREAMBLE.size or data[:4] != MAGIC:
        raise ValueError(f"load_compressed: {path!r} is not a minigrad compressed model, or is "
                         f"truncated or corrupt (it does not start with {MAGIC!r})")
    _, version, header_size, crc = PREAMBLE.unpack_from(data)
    if version != VERSION:
        raise ValueError(f"load_compressed: {path!r} has format version {version}; this "
                         f"minigrad reads version {VERSION} (a newer minigrad's file, or one "
                         "truncated or corrupt)")
    if zlib.crc32(data[PREAMBLE.size:]) != crc:
        raise ValueError(f"load_compressed: {path!r} is truncated or corrupt (CRC mismatch); "
                         "nothing was loaded")
    try:
        return _parse(data, header_size)
    except _HEADER_ERRORS as error:
        raise ValueError(f"load_compressed: {path!r} is truncated or corrupt ({error})") from error


def _parse(data, header_size):
    """The CompressedModel from a file's bytes whose CRC has been checked."""
    if PREAMBLE.size + header_size > len(data):
        raise _CorruptPart(f"a header of {header_size} bytes in a file of {len(data)}")
    header = json.loads(zlib.decompress(data[PREAMBLE.size:PREAMBLE.size + header_size]))
    reader = _Reader(data, PREAMBLE.size + header_size)
    layers = []
    for entry in header["layers"]:
        centroids = np.frombuffer(reader.take(4 * entry["codebook"]), dtype=np.float32)
        values, gaps = (reader.stream(entry[key]) for key in ("values", "gaps"))
        layers.append(CompressedLayer(entry["name"], tuple(entry["shape"]), centroids.copy(),
                                      values, gaps))
    plain = {}
    for entry in header["plain"]:
        dtype = np.dtype(entry["dtype"])
        if dtype.hasobject:
            raise _CorruptPart(f"tensor {entry['name']!r} claims dtype {dtype}")
        size = dtype.itemsize * int(np.prod(entry["shape"], dtype=object))
        plain[entry["name"]] = np.frombuffer(reader.take(size), dtype=dtype).reshape(
            entry["shape"]).copy()
    if reader.offset != len(data):
        raise _CorruptPart(f"{len(data) - reader.offset} bytes past its last tensor")
    return CompressedModel(layers, plain)


class _Reader:
    """Reads the body's consecutive parts, each checked to lie inside the file."""

    def __init__(self, data, offset):
        self.data, self.offset = data, offset

    def take(self, size):
        if not 0 <= size <= len(self.data) - self.offset:
            raise _CorruptPart(f"a part of {size} bytes at offset {self.offset}, past the end "
                              f"of the file ({len(self.data)} bytes)")
        part = self.data[self.offset:self.offset + size]
        self.offset += size
        return part

    def stream(self, entry):
        """A Stream whose claimed symbol count fits its bytes: at least one bit a symbol when
        Huffman-coded, ``bits`` bits a symbol at fixed width."""
        count, bits, size = int(entry["count"]), int(entry["bits"]), int(entry["bytes"])
        if not 1 <= bits <= 32 or count < 0:
            raise _CorruptPart(f"a stream of {count} symbols of {bits} bits")
        lengths = None
        if entry["huffman"]:
            alphabet = 2**bits
            lengths = _unpack_nibbles(self.take(huffman.table_bytes(alphabet)), alphabet)
        payload = np.frombuffer(self.take(size), dtype=np.uint8).copy()
        if count * (1 if lengths is not None else bits) > 8 * size:
            raise _CorruptPart(f"a stream of {count} symbols in {size} bytes")
        return Stream(count, bits, payload, lengths)
