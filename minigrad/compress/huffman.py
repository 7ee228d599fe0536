"""Huffman coding (Huffman 1952), the last stage of Deep Compression.

A stream of symbols (cluster indices, index gaps) is rarely uniform: a few symbols are common.
Huffman coding gives symbol i, seen with probability p_i, a prefix-free code of l_i bits, with
short codes for common symbols. Its average length L = sum_i p_i l_i is the smallest any
prefix-free code of whole bits can reach, within one bit of the entropy:

    H = -sum_i p_i log2 p_i  <=  L  <  H + 1

The lengths come from repeatedly merging the two least frequent subtrees (each merge adds one
bit to every symbol below it). The code itself is *canonical*: symbols sorted by (length,
symbol) get consecutive codes, so the lengths alone define it and a decoder needs only them
(as DEFLATE does). We store each length in 4 bits, so lengths are capped at 15; a stream
whose code would need longer ones is left uncoded (``encode`` then returns None).
"""

import heapq
import itertools

import numpy as np

MAX_LENGTH = 15      # a code length fits in 4 bits
LENGTH_BITS = 4


def code_lengths(counts):
    """Huffman code lengths for symbols 0..n-1 seen ``counts[i]`` times (0 for unused ones;
    a lone used symbol gets 1 bit). Ties are broken by symbol order, so the result is
    deterministic."""
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(len(counts), dtype=np.int64)
    used = np.flatnonzero(counts)
    if len(used) == 1:
        lengths[used] = 1
        return lengths
    order = itertools.count()  # tie-breaker: heapq never compares the symbol lists
    heap = [(int(counts[s]), next(order), [s]) for s in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        count_a, _, symbols_a = heapq.heappop(heap)
        count_b, _, symbols_b = heapq.heappop(heap)
        lengths[symbols_a + symbols_b] += 1  # every symbol below the merge: one bit deeper
        heapq.heappush(heap, (count_a + count_b, next(order), symbols_a + symbols_b))
    return lengths


def canonical_codes(lengths):
    """The canonical code of every used symbol: {symbol: (code, length)}. Walking symbols in
    (length, symbol) order, each code is the previous one plus 1, shifted left when the
    length grows."""
    codes, code, previous_length = {}, 0, 0
    for symbol in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        length = int(lengths[symbol])
        code <<= length - previous_length
        codes[int(symbol)] = (code, length)
        code += 1
        previous_length = length
    return codes


def encode(symbols, alphabet_size):
    """Huffman-code the integer array ``symbols`` (values in [0, alphabet_size)).

    Returns (lengths, payload, bit_count): the uint8 code length of every symbol of the
    alphabet, the code bits packed into uint8 (most significant bit first) and the number of
    meaningful bits; or None when the code would need lengths above 15 bits."""
    symbols = np.asarray(symbols).ravel()
    lengths = code_lengths(np.bincount(symbols, minlength=alphabet_size))
    if lengths.max(initial=0) > MAX_LENGTH:
        return None
    codes = canonical_codes(lengths)
    bits = "".join(format(code, f"0{length}b") for code, length in
                   (codes[int(s)] for s in symbols))
    payload = np.packbits(np.frombuffer(bits.encode("ascii"), dtype=np.uint8) - ord("0"))
    return lengths.astype(np.uint8), payload, len(bits)


def decode(lengths, payload, count):
    """The ``count`` symbols coded in ``payload`` with the canonical code of ``lengths``.
    ValueError when the bits run out or do not form a code word (a damaged stream)."""
    codes = {(code, length): symbol for symbol, (code, length) in canonical_codes(lengths).items()}
    bits = np.unpackbits(np.asarray(payload, dtype=np.uint8))
    symbols = np.empty(count, dtype=np.int64)
    position = 0
    for i in range(count):
        code = length = 0
        while (code, length) not in codes:
            if length == MAX_LENGTH or position == len(bits):
                raise ValueError(f"huffman.decode: damaged stream at symbol {i} of {count}")
            code = (code << 1) | int(bits[position])
            length += 1
            position += 1
        symbols[i] = codes[code, length]
    return symbols


def table_bytes(alphabet_size):
    """The bytes the code table takes: a 4-bit length for every symbol of the alphabet."""
    return -(-alphabet_size * LENGTH_BITS // 8)
