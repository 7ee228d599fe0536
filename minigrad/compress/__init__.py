"""``minigrad.compress``: Deep Compression's storage stages (Han, Mao & Dally 2016), after
pruning (``minigrad.prune``) and k-means weight sharing (``minigrad.quant.kmeans_share``).

    from minigrad import compress
    compressed = compress.save_compressed(model, "lenet5.mgdc")    # relative indices + Huffman
    print(compressed.nbytes())                                     # adds up to the file size
    fresh = LeNet5()
    fresh.load_state_dict(compress.load_compressed("lenet5.mgdc").state_dict())

Pieces:
    relative_index.encode(positions, bits) / decode(stream, bits)    gaps with escapes
    huffman.code_lengths(counts), canonical_codes(lengths), encode(symbols, alphabet_size),
        decode(lengths, payload, count)
    storage: compress(model, index_bits=..., entropy_coding=True) -> CompressedModel
        (.layers, .plain, .nbytes(), .to_bytes(), .state_dict()); save_compressed(model,
        path), load_compressed(path); encode_stream / decode_stream
"""

from minigrad.compress import huffman, relative_index
from minigrad.compress.storage import (CompressedLayer, CompressedModel, Stream, compress,
                                       decode_stream, default_index_bits, encode_stream,
                                       load_compressed, save_compressed)

__all__ = ["CompressedLayer", "CompressedModel", "Stream", "compress", "decode_stream",
           "default_index_bits", "encode_stream", "huffman", "load_compressed",
           "relative_index", "save_compressed"]
