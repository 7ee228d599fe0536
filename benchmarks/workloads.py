"""What ``run.py`` measures: the workloads, their FLOP counts and the targets of issue 19.

Plain Python data (no NumPy), so the parent process can name rows, count FLOPs and judge
targets without loading a framework; ``worker.py`` builds each workload from the same spec in
every framework, so PyTorch runs the very same models (minigrad.nn has PyTorch's names).

A spec is a JSON-able dict:
    {"kind": "matmul", "n": 512}
    {"kind": "conv", "mode": M, "batch": N, "c_in": C, "c_out": O, "kernel": K, "stride": S,
     "padding": P, "groups": g, "size": H}       a square image H x H, a K x K kernel
    {"kind": "model", "model": "lenet" | "mlp", "mode": M, "batch": N}
with the mode M one of
    "forward"    the layer under no_grad
    "train"      forward + backward: conv(x).sum().backward() with x requiring grad; for a
                 model, cross-entropy, zero_grad, backward and an SGD step (momentum 0.9)
    "inference"  eval mode under no_grad; for "conv", conv + bias + ReLU

FLOPs by formula (a multiply-add is 2 FLOPs):
    matmul (n, n) @ (n, n)                    2 n^3
    conv2d forward                            2 N O (C / g) KH KW Ho Wo,
                                              Ho = Wo = (H + 2P - K) // S + 1
    Linear (N, in) -> (N, out) forward        2 N in out
    forward + backward                        3 x forward (dL/dw and dL/dx each cost one
                                              forward), 2 x for a model's first layer (its
                                              input needs no dL/dx)
Bias, ReLU, pooling, the loss and the optimizer step are not counted: they cost O(outputs),
not O(outputs x terms).
"""

from dataclasses import dataclass

# Layers as (type, arguments...): ("conv", in, out, kernel, padding), ("linear", in, out),
# ("maxpool", kernel), ("relu",), ("flatten",). INPUTS: the image shape after the batch dim.
MODELS = {
    "lenet": [("conv", 1, 6, 5, 2), ("relu",), ("maxpool", 2),
              ("conv", 6, 16, 5, 0), ("relu",), ("maxpool", 2), ("flatten",),
              ("linear", 400, 120), ("relu",), ("linear", 120, 84), ("relu",),
              ("linear", 84, 10)],
    "mlp": [("flatten",), ("linear", 784, 300), ("relu",), ("linear", 300, 100), ("relu",),
            ("linear", 100, 10)],
}
INPUTS = {"lenet": (1, 28, 28), "mlp": (784,)}


@dataclass(frozen=True)
class Target:
    """Issue 19's bar for a row: torch / minigrad >= ``ratio``, and where given, minigrad's
    GFLOP/s >= ``peak_share`` of the FMA-loop peak."""
    ratio: float
    peak_share: float = None

    def met(self, ratio, share):
        return ratio >= self.ratio and (self.peak_share is None
                                        or (share is not None and share >= self.peak_share))

    def __str__(self):
        return f">= {self.ratio:.1f}" + ("" if self.peak_share is None
                                      else f", >= {self.peak_share:.0%} peak")


# Issue 19's targets, all of them: the rows', then the sweep's (ratios are torch / minigrad,
# minigrad with its fastest CPU kernel set). W5 keeps the 0.8 it had before issue 19.
TARGETS = {"W2": Target(1.0), "W3": Target(1.0), "W4": Target(1.3, peak_share=0.20),
           "W5": Target(0.8), "W6": Target(2.0), "W7": Target(1.0)}
SWEEP_TARGETS = {"train": 1.0, "inference": 1.3}  # geometric mean over the sweep, per mode
SWEEP_ROW_MINIMUM = 0.7  # no sweep row, of any mode, below this


@dataclass(frozen=True)
class Workload:
    key: str
    name: str
    spec: dict

    @property
    def flops(self):
        return flops(self.spec)

    @property
    def target(self):
        return TARGETS.get(self.key)


def conv_output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def conv_forward_flops(batch, c_in, c_out, kernel, stride, padding, groups, size):
    """2 N O (C / g) KH KW Ho Wo."""
    out = conv_output_size(size, kernel, stride, padding)
    return 2 * batch * c_out * (c_in // groups) * kernel * kernel * out * out


def model_flops(model, batch, training):
    """The conv and Linear FLOPs of one pass through MODELS[model], following the shapes; in
    training 3x each layer's forward, 2x for the first (its input needs no gradient)."""
    shape, total, first = INPUTS[model], 0, True
    for layer, *args in MODELS[model]:
        if layer == "conv":
            c_in, c_out, kernel, padding = args
            forward = conv_forward_flops(batch, c_in, c_out, kernel, 1, padding, 1, shape[1])
            shape = (c_out, conv_output_size(shape[1], kernel, 1, padding))
        elif layer == "linear":
            forward, shape = 2 * batch * args[0] * args[1], (args[1],)
        else:
            if layer == "maxpool":
                shape = (shape[0], shape[1] // args[0])
            continue
        total += forward * ((2 if first else 3) if training else 1)
        first = False
    return total


def flops(spec):
    """FLOPs of one run of the workload ``spec`` (see the module docstring)."""
    if spec["kind"] == "matmul":
        return 2 * spec["n"] ** 3
    if spec["kind"] == "model":
        return model_flops(spec["model"], spec["batch"], spec["mode"] == "train")
    shape = {name: spec[name] for name in
             ("batch", "c_in", "c_out", "kernel", "stride", "padding", "groups", "size")}
    return conv_forward_flops(**shape) * (3 if spec["mode"] == "train" else 1)


def conv_spec(mode, batch, c_in, c_out, kernel, size, stride=1, groups=1):
    """A conv workload, padded to keep H at stride 1 ("same" for odd K)."""
    return {"kind": "conv", "mode": mode, "batch": batch, "c_in": c_in, "c_out": c_out,
            "kernel": kernel, "stride": stride, "padding": kernel // 2, "groups": groups,
            "size": size}


ROWS = [
    Workload("W1", "sgemm 512^3", {"kind": "matmul", "n": 512}),
    Workload("W2", "conv 3->32 3x3 32x32 b64 fwd+bwd", conv_spec("train", 64, 3, 32, 3, 32)),
    Workload("W3", "conv 32->64 3x3 16x16 b64 fwd+bwd", conv_spec("train", 64, 32, 64, 3, 16)),
    Workload("W4", "LeNet-5 train step b64",
             {"kind": "model", "model": "lenet", "mode": "train", "batch": 64}),
    Workload("W5", "MLP 784-300-100-10 train b128",
             {"kind": "model", "model": "mlp", "mode": "train", "batch": 128}),
    Workload("W6", "LeNet-5 inference b256",
             {"kind": "model", "model": "lenet", "mode": "inference", "batch": 256}),
    Workload("W7", "depthwise 3x3 64ch 16x16 b32 fwd+bwd",
             conv_spec("train", 32, 64, 64, 3, 16, groups=64)),
]

# The sweep: (batch, in, out, kernel, stride, size, groups); depthwise: groups = in = out.
SWEEP_SHAPES = [
    (1, 3, 16, 3, 1, 56, 1), (1, 64, 64, 3, 1, 14, 1), (1, 256, 256, 3, 1, 7, 1),
    (1, 128, 128, 3, 2, 28, 128),
    (8, 1, 32, 5, 1, 28, 1), (8, 16, 32, 3, 1, 56, 1), (8, 64, 128, 3, 2, 28, 1),
    (8, 128, 256, 1, 1, 14, 1), (8, 32, 32, 3, 1, 56, 32),
    (64, 3, 16, 3, 2, 56, 1), (64, 6, 16, 5, 1, 14, 1), (64, 32, 64, 1, 1, 28, 1),
    (64, 64, 64, 3, 2, 28, 1), (64, 64, 128, 3, 1, 14, 1), (64, 128, 128, 3, 1, 14, 128),
    (64, 256, 256, 1, 1, 7, 1),
]
QUICK_SWEEP = [1, 4, 8, 10]  # indices into SWEEP_SHAPES for --quick
SWEEP_MODES = ("forward", "train", "inference")


def shape_name(batch, c_in, c_out, kernel, stride, size, groups):
    kind = "dw " if groups == c_in == c_out and groups > 1 else ""
    return (f"b{batch} {kind}{c_in}->{c_out} {kernel}x{kernel}"
            f"{f' s{stride}' if stride > 1 else ''} {size}x{size}")


def sweep(indices=None):
    """The sweep's workloads, keyed "S<shape>-<mode>", for the shapes at ``indices`` (all by
    default)."""
    indices = range(len(SWEEP_SHAPES)) if indices is None else indices
    rows = []
    for index in indices:
        batch, c_in, c_out, kernel, stride, size, groups = SWEEP_SHAPES[index]
        for mode in SWEEP_MODES:
            rows.append(Workload(f"S{index:02d}-{mode}", shape_name(*SWEEP_SHAPES[index]),
                                 conv_spec(mode, batch, c_in, c_out, kernel, size, stride,
                                           groups)))
    return rows
