"""Relative indexing of a sparse tensor's nonzero positions (Deep Compression, section 2).

Rather than each nonzero's absolute position (16 or 32 bits), store the gap to the previous
one in a few bits b: the number of zeros skipped, ``skip_i = p_i - p_(i-1) - 1`` with
p_(-1) = -1, over the tensor flattened in C order. A gap that does not fit is split with an
escape symbol E = 2^b - 1, which means "E zeros, and no weight here":

    skip = e E + r,  0 <= r <= E - 1   ->   stream: E repeated e times, then r

So every entry of the stream is one b-bit symbol and only real weights take a value. (Han et
al. store a *filler zero* in the value stream instead of an escape; it needs a zero in the
codebook, which k-means over the nonzero weights does not have.)
"""

import numpy as np


def escape_symbol(bits):
    return 2**bits - 1


def encode(positions, bits):
    """The gap stream (int64) of the sorted flat ``positions`` of the nonzeros."""
    positions = np.asarray(positions, dtype=np.int64)
    escape = escape_symbol(bits)
    skips = np.diff(positions, prepend=-1) - 1
    if (skips < 0).any():
        raise ValueError("relative_index.encode: positions must be strictly increasing")
    escapes, remainders = np.divmod(skips, escape)
    # Each nonzero's run is its escapes then its remainder, so remainders end the runs.
    runs = escapes + 1
    stream = np.full(int(runs.sum()), escape, dtype=np.int64)
    stream[np.cumsum(runs) - 1] = remainders
    return stream


def decode(stream, bits):
    """The flat positions coded by a gap ``stream`` (the inverse of ``encode``)."""
    stream = np.asarray(stream, dtype=np.int64)
    escape = escape_symbol(bits)
    is_escape = stream == escape
    positions = np.cumsum(np.where(is_escape, escape, stream + 1)) - 1
    return positions[~is_escape]
