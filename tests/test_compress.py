"""Deep Compression storage: Huffman codes, relative indices, and the file format."""

import math
import os

import numpy as np
import pytest

import minigrad as mg
from minigrad import compress, nn, prune, quant
from minigrad.compress import huffman, relative_index
from minigrad.models import LeNet5


def test_huffman_lengths_of_a_textbook_example():
    # Frequencies 45, 13, 12, 16, 9, 5 (CLRS 16.3): codes of 1, 3, 3, 3, 4, 4 bits.
    lengths = huffman.code_lengths([45, 13, 12, 16, 9, 5])
    assert lengths.tolist() == [1, 3, 3, 3, 4, 4]
    assert sum(2.0 ** -lengths) == 1.0  # Kraft: a complete prefix code


def test_huffman_average_length_is_within_one_bit_of_the_entropy():
    rng = np.random.default_rng(0)
    symbols = rng.geometric(0.3, size=5000).clip(max=31) - 1
    lengths, payload, bit_count = huffman.encode(symbols, 32)
    p = np.bincount(symbols, minlength=32) / len(symbols)
    entropy = -sum(q * math.log2(q) for q in p if q > 0)
    average = bit_count / len(symbols)
    assert entropy <= average < entropy + 1
    assert payload.size == math.ceil(bit_count / 8)
    np.testing.assert_array_equal(huffman.decode(lengths, payload, len(symbols)), symbols)


def test_canonical_codes_are_prefix_free():
    codes = huffman.canonical_codes(np.array([2, 0, 3, 3, 2, 2]))
    words = [format(code, f"0{length}b") for code, length in codes.values()]
    assert len(words) == 5
    assert not any(a != b and b.startswith(a) for a in words for b in words)


def test_huffman_single_symbol_and_damaged_stream():
    lengths, payload, bits = huffman.encode(np.array([3, 3, 3]), 4)
    assert lengths.tolist() == [0, 0, 0, 1] and bits == 3
    np.testing.assert_array_equal(huffman.decode(lengths, payload, 3), [3, 3, 3])
    with pytest.raises(ValueError, match="damaged"):
        huffman.decode(lengths, payload, 100)


@pytest.mark.parametrize("bits", [2, 3, 5, 8])
def test_relative_indices_round_trip_with_escapes(bits):
    rng = np.random.default_rng(bits)
    positions = np.sort(rng.choice(5000, size=300, replace=False))
    stream = relative_index.encode(positions, bits)
    assert stream.max() <= 2**bits - 1
    np.testing.assert_array_equal(relative_index.decode(stream, bits), positions)
    # Escapes: one per full 2^bits - 1 zeros skipped.
    skips = np.diff(positions, prepend=-1) - 1
    assert len(stream) == len(positions) + int((skips // (2**bits - 1)).sum())


def test_relative_index_example():
    # Positions 0, 3, 11 with 2 bits (escape 3): skips 0, 2, 7 = 3 + 3 + 1.
    stream = relative_index.encode([0, 3, 11], 2)
    assert stream.tolist() == [0, 2, 3, 3, 1]
    assert relative_index.decode(stream, 2).tolist() == [0, 3, 11]


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_fixed_width_stream_round_trip(bits):
    symbols = np.random.default_rng(1).integers(0, 2**bits, size=77)
    stream = compress.encode_stream(symbols, bits, entropy_coding=False)
    assert stream.lengths is None and stream.payload.size == math.ceil(77 * bits / 8)
    np.testing.assert_array_equal(compress.decode_stream(stream), symbols)
    with pytest.raises(ValueError, match=r"\[0, "):
        compress.encode_stream([2**bits], bits)


def compressed_lenet(amount=0.9):
    mg.manual_seed(0)
    model = LeNet5()
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            prune.l1_unstructured(module, "weight", amount=amount)
            prune.remove(module, "weight")
            quant.kmeans_share(module, bits=8 if isinstance(module, nn.Conv2d) else 5)
    return model


def test_saved_model_reloads_exactly_and_its_parts_add_up_to_the_file(tmp_path):
    model = compressed_lenet()
    x = mg.tensor(np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32))
    expected = model(x).numpy()
    path = tmp_path / "lenet.mgdc"
    saved = compress.save_compressed(model, path)
    assert sum(saved.nbytes().values()) == os.path.getsize(path)
    assert [layer.nonzeros for layer in saved.layers] == [15, 240, 4800, 1008, 84]

    fresh = LeNet5()
    fresh.load_state_dict(compress.load_compressed(path).state_dict())
    np.testing.assert_array_equal(fresh(x).numpy(), expected)
    # 5 + 5 bits per fc weight and 8 + 8 per conv weight, at most, before Huffman.
    fixed = compress.compress(model, entropy_coding=False).nbytes()
    assert fixed["codes"] == sum(math.ceil(n * b / 8) for n, b in
                                 [(15, 8), (240, 8), (4800, 5), (1008, 5), (84, 5)])
    assert saved.nbytes()["codes"] + saved.nbytes()["Huffman tables"] <= fixed["codes"] + 80
    assert sum(saved.nbytes().values()) < 61706 * 4 / 20


def test_damaged_or_foreign_files_are_refused(tmp_path):
    path = tmp_path / "lenet.mgdc"
    compress.save_compressed(compressed_lenet(), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.mgdc").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC"):
        compress.load_compressed(tmp_path / "flipped.mgdc")
    (tmp_path / "short.mgdc").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="short.mgdc' is truncated or corrupt"):
        compress.load_compressed(tmp_path / "short.mgdc")
    (tmp_path / "other.npz").write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(ValueError, match="not a minigrad compressed model"):
        compress.load_compressed(tmp_path / "other.npz")


def test_a_model_without_shared_layers_is_refused():
    with pytest.raises(ValueError, match="kmeans_share"):
        compress.compress(LeNet5())


def test_loading_into_another_architecture_names_the_mismatch(tmp_path):
    path = tmp_path / "lenet.mgdc"
    compress.save_compressed(compressed_lenet(), path)
    with pytest.raises(ValueError, match="shape mismatch"):
        LeNet5(num_classes=5).load_state_dict(compress.load_compressed(path).state_dict())
