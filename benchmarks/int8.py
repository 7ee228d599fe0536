"""Integer (int8) kernels against float32 at LeNet-5's shapes, batch 256: is int8 inference
faster on this CPU?

    python benchmarks/int8.py [--repeats N] [--quick]

Rows (each: float32 time, int8 time, float32 / int8; above 1, int8 is faster):
* GEMM: LeNet-5's Linear layers at batch 256 (fc1 256x400 @ 400x120, fc2, fc3) and conv2 as
  one GEMM (its im2col matrix, positions x terms, 25600x150 @ 150x16): NumPy's BLAS sgemm
  against ``numba_cpu.int8_gemm`` (uint8 activations with a zero point, int8 weights, as a
  quantized Linear calls it: ``int8_gemm(x_q, W_q.T, z_x, 0, bias)``).
* conv: LeNet-5's two convolutions, ``numba_cpu.conv2d_forward`` (float32) against
  ``numba_cpu.int8_conv2d``.
* requantize: conv1's 1.2M accumulators to uint8 codes (``numba_cpu.requantize``), against
  what float32 does there, a ReLU; and the NumPy reference (``fixed_point.requantize``).
* LeNet-5 forward: the float32 model (``minigrad.models.LeNet5``, numba kernels, no_grad)
  against the same layers composed from the integer kernels by hand: quantize the input,
  int8_conv2d + requantize (ReLU fused: qmin = z) + max-pool on the codes, twice, then
  int8_gemm + requantize three times. Scales come from the float model's weights and
  activations on the batch. No Module overhead on the int8 side: this is the kernels' bound
  for a converted model.

The int8 kernels run on one core; NumPy's BLAS on every core unless OPENBLAS_NUM_THREADS says
otherwise (``OPENBLAS_NUM_THREADS=1 python benchmarks/int8.py`` compares one core with one).
Times are medians of ``--repeats`` calls, the two sides alternating, after warm-up calls
(which include Numba's compilation; ``median_us`` of ``benchmarks/sparse.py``). The NumPy reference column (``numpy_ref``: int32 matmul,
NumPy has no integer BLAS) is timed with a fifth of the repeats.
"""

import argparse
import os
import statistics
import timeit

import numpy as np

import minigrad as mg
from minigrad import backend
from minigrad.backend import numba_cpu, numpy_ref
from minigrad.models import LeNet5
from minigrad.backend.fixed_point import quantize_multiplier
from minigrad.report import format_table
from sparse import median_us

BATCH = 256
GEMMS = [("fc1", 400, 120), ("fc2", 120, 84), ("fc3", 84, 10)]
CONVS = [("conv1 1->6 5x5 p2 28x28", (BATCH, 1, 28, 28), 6, 2),
         ("conv2 6->16 5x5 14x14", (BATCH, 6, 14, 14), 16, 0)]


def compare(name, float_call, int8_call, reference_call, repeats):
    """One table row, times only (the tests check the values): float32 and int8 alternate
    (``sparse.median_us``); the reference runs alone, a fifth as often."""
    float_ms, int8_ms = (us / 1e3 for us in median_us(float_call, int8_call, repeats))
    reference_ms = None
    if reference_call is not None:
        reference_ms = 1e3 * statistics.median(
            timeit.repeat(reference_call, number=1, repeat=max(1, repeats // 5)))
    return (name, float_ms, int8_ms, float_ms / int8_ms, reference_ms)


def codes(rng, shape, dtype):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def gemm_rows(rng, repeats):
    rows = []
    shapes = [(name, BATCH, k, n) for name, k, n in GEMMS] + [("conv2 as GEMM", 25600, 150, 16)]
    for name, m, k, n in shapes:
        x, weight = codes(rng, (m, k), np.uint8), codes(rng, (n, k), np.int8)
        bias = rng.integers(-1000, 1000, n).astype(np.int32)
        x_float, weight_float = x.astype(np.float32), weight.astype(np.float32)
        rows.append(compare(
            f"GEMM {name} {m}x{k} @ {k}x{n}", lambda: x_float @ weight_float.T,
            lambda: numba_cpu.int8_gemm(x, weight.T, 3, 0, bias),
            lambda: numpy_ref.int8_gemm(x, weight.T, 3, 0, bias), repeats))
    return rows


def conv_rows(rng, repeats):
    rows = []
    for name, shape, out_channels, padding in CONVS:
        x, weight = codes(rng, shape, np.uint8), codes(rng, (out_channels, shape[1], 5, 5), np.int8)
        x_float, weight_float = x.astype(np.float32), weight.astype(np.float32)
        geometry = ((1, 1), (padding, padding), (1, 1))
        rows.append(compare(
            f"conv {name}", lambda: numba_cpu.conv2d_forward(x_float, weight_float, *geometry),
            lambda: numba_cpu.int8_conv2d(x, weight, 3, *geometry),
            lambda: numpy_ref.int8_conv2d(x, weight, 3, *geometry), repeats))
    return rows


def requantize_rows(rng, repeats):
    acc = rng.integers(-2**20, 2**20, (BATCH, 6, 28, 28)).astype(np.int32)
    m0, shift = quantize_multiplier(np.exp(rng.uniform(-9, -5, 6)))
    acc_float = acc.astype(np.float32)
    return [compare("requantize conv1 (1.2M) / float ReLU", lambda: np.maximum(acc_float, 0),
                    lambda: numba_cpu.requantize(acc, m0, shift, 0, 0, 255),
                    lambda: numpy_ref.requantize(acc, m0, shift, 0, 0, 255), repeats)]


class Int8LeNet5:
    """LeNet-5's forward pass in integer kernels: uint8 activations (affine, z from the
    observed range), int8 weights (symmetric, per output channel), int32 biases, one
    fixed-point multiplier per output channel."""

    def __init__(self, model, x):
        layers = [m for m in model.modules() if type(m).__name__ in ("Conv2d", "Linear")]
        ranges = self._activation_ranges(model, x)
        self.input_scale, self.input_zero = self._affine(float(x.min()), float(x.max()))
        scale_in, self.layers = self.input_scale, []
        for layer, (low, high) in zip(layers, ranges):
            weight = layer.weight.numpy()
            w_scale = np.abs(weight.reshape(len(weight), -1)).max(axis=1) / 127
            w_q = np.rint(weight / w_scale.reshape((-1,) + (1,) * (weight.ndim - 1)))
            bias = np.rint(layer.bias.numpy() / (scale_in * w_scale)).astype(np.int32)
            scale_out, zero_out = self._affine(low, high)
            m0, shift = quantize_multiplier(scale_in * w_scale / scale_out)
            padding = getattr(layer, "padding", None)
            self.layers.append((w_q.astype(np.int8), bias, m0, shift, zero_out, padding))
            scale_in = scale_out
        self.output_scale, self.output_zero = scale_in, self.layers[-1][4]

    @staticmethod
    def _affine(low, high):
        scale = (max(high, 0) - min(low, 0)) / 255
        return scale, int(np.clip(np.rint(-min(low, 0) / scale), 0, 255))

    @staticmethod
    def _activation_ranges(model, x):
        """(min, max) of every conv/linear layer's output after its ReLU (the last has none)."""
        outputs, modules = [], list(model.features) + list(model.classifier)
        with mg.no_grad():
            h = mg.tensor(x)
            for i, module in enumerate(modules):
                h = module(h)
                if type(module).__name__ in ("Conv2d", "Linear"):
                    follower = modules[i + 1] if i + 1 < len(modules) else None
                    after = follower(h) if type(follower).__name__ == "ReLU" else h
                    outputs.append((float(after.numpy().min()), float(after.numpy().max())))
        return outputs

    def __call__(self, x):
        h = np.clip(np.rint(x / self.input_scale) + self.input_zero, 0, 255).astype(np.uint8)
        zero_in = self.input_zero
        for i, (w_q, bias, m0, shift, zero_out, padding) in enumerate(self.layers):
            last = i == len(self.layers) - 1
            if w_q.ndim == 4:
                acc = numba_cpu.int8_conv2d(h, w_q, zero_in, (1, 1), padding, (1, 1), bias)
            else:
                acc = numba_cpu.int8_gemm(h.reshape(len(h), -1), w_q.T, zero_in, 0, bias)
            h = numba_cpu.requantize(acc, m0, shift, zero_out, 0 if last else zero_out, 255)
            if w_q.ndim == 4:
                h = numba_cpu.max_pool2d_forward(h, (2, 2), (2, 2), (0, 0), (1, 1))[0]
            zero_in = zero_out
        return self.output_scale * (h.astype(np.float32) - self.output_zero)


def model_rows(rng, repeats):
    backend.set_cpu_kernels("numba")
    mg.manual_seed(0)
    model = LeNet5().eval()
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    int8_model = Int8LeNet5(model, x)
    x_tensor = mg.tensor(x)

    def float_forward():
        with mg.no_grad():
            return model(x_tensor)

    logits = float_forward().numpy()
    error = np.abs(int8_model(x) - logits).max()
    print(f"LeNet-5 (untrained) logits: int8 within {error:.4f} of float32 (which span "
          f"{logits.max() - logits.min():.4f})")
    return [compare(f"LeNet-5 forward b{BATCH}", float_forward, lambda: int8_model(x), None,
                    repeats)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="5 repeats (a smoke test)")
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    rng = np.random.default_rng(0)
    print(f"median of {repeats} calls; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs")
    rows = gemm_rows(rng, repeats) + conv_rows(rng, repeats) + requantize_rows(rng, repeats)
    rows += model_rows(rng, repeats)
    print(format_table(["workload", "float32 (ms)", "int8 (ms)", "float32 / int8",
                        "int8 numpy_ref (ms)"], rows, [None, ".3f", ".3f", ".2f", ".2f"]))


if __name__ == "__main__":
    main()
