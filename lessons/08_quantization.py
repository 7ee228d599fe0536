"""Lesson 08 — quantization: LeNet-5 with 8, 4, 3 and 2-bit integers instead of 32-bit floats.

Run:   .venv/bin/python lessons/08_quantization.py [--quick] [--data-dir ../shared/data/mnist]

A real number x is stored as an integer code with a scale s and a zero point z
(Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference"):

    x_q = clamp(round(x / s) + z, qmin, qmax),        x ~= s (x_q - z)

Weights are symmetric (z = 0), one scale per output channel, s_c = max|w_c| / (2^(b-1) - 1);
activations are affine and unsigned, s = (b_hi - a_lo) / (2^b - 1), with the range [a_lo, b_hi]
chosen by an *observer* from calibration data. A converted layer then computes in integers only:

    y_q = z_y + M (sum_k (x_q,k - z_x) w_q,k + b_q),   M = s_x s_w / s_y = M0 2^-n  (int32 M0)

Quantization-aware training (QAT) runs the float model with y = s (x_q - z) in its forward
pass ("fake quantization") and a straight-through gradient (d y / d x = 1 inside the range), so
the weights learn to sit well on the grid. k-means sharing (Deep Compression, Han et al. 2016)
stores weight = c[index] with 2^b trained centroids c (dL/dc_j = sum of dL/dw_i over cluster
j); power-of-two weights are 0 or sign(w) 2^p (a multiply becomes a shift).

A. fp32 against int8 post-training quantization (PTQ): per-tensor and per-channel weights, and
   four activation observers (MinMax, MovingAverage, Histogram, Percentile), calibrated on
   512 training images, with 8-bit and with 4-bit activations.
B. Accuracy against bit width, 8 down to 2: weights only (8-bit activations), and weights and
   activations (``accuracy_vs_bits.png``).
C. fc1's weight histogram with the 16 levels of 4-bit uniform, power-of-two and k-means
   quantization drawn on it (``levels.png``), and each one's error on those weights.
D. PTQ against QAT at 4 bits, and at the narrower widths where PTQ falls apart.
E. Other weight grids: power-of-two and k-means (with a short centroid fine-tune) against
   uniform, at 4 and 2 bits; ternary weights (TWN) with the same fine-tune.
F. Model size in bytes: fp32, int8, 4-bit, mixed (8-bit conv / 4-bit fc), k-means, float16.
G. Inference time at batch 256: our fp32 (Numba) against our int8 model; PyTorch's fp32 and
   int8 LeNet-5 (x86 engine) measured in the same run when torch is installed. The int8 model
   is saved and loaded back, and must give identical outputs.
H. Deploying: the fp32 and the int8 model exported to ONNX (``lenet5_fp32.onnx``,
   ``lenet5_int8.onnx``: Conv/Gemm in float32; QLinearConv and MatMulInteger on the int8
   codes) and run in ONNX Runtime beside minigrad's executor on the test images: accuracy in
   each, the largest |logit difference| (fp32) or output code difference (int8), file bytes,
   and latency at batch 1 and 256. Skipped, with a note, without onnx and onnxruntime
   (``pip install -e ".[onnx]"``).

What to look at: A's drop column (per-channel int8 costs about nothing; observers matter only
once activations get few bits), the knee of B's curves (between 4 and 2 bits), C's picture
(uniform levels waste codes in the empty tails, k-means puts them where the weights are), D's
QAT column (it recovers what PTQ loses where PTQ loses something), and F and G (a quarter of
the bytes; speed depends on the kernels, not the bits); in H, the same accuracies in both
runtimes (integer codes that differ, if at all, by one where a product lies within float32
rounding of a half) and what a tuned runtime makes of the same graph.

With ``--data-dir`` (full MNIST) the targets are: int8 per-channel PTQ within 0.3 points of
fp32 at <= 26% of its size; QAT within 1 point of fp32 where PTQ is not (at 3 and 2 bits
that takes two epochs of all 60,000 images: add ``--finetune-images 60000``; the default
10,000 leaves it about 1.5 points short); int8 throughput >= 0.7x our fp32 path.

The bundled subset (3 epochs on 15,500 images, 2,000 test images): fp32 98.20%, int8
per-channel PTQ 98.15%; 3-bit PTQ 91.90% -> QAT 96.80%, 2-bit weights 63.65% -> 96.50%.
``--quick`` (3,000 images, one epoch, 1,000 test images) makes every point, but its fp32
model (91.90%) is undertrained: the fine-tunes of D and E train it further too, so a
fine-tuned model can end above fp32 (k-means 4-bit, fine-tuned: 92.50%), and the run says so.
"""

import copy
import functools
import importlib.util
import os
import time
import warnings

import numpy as np

import minigrad as mg
from minigrad import cli, nn, quant
from minigrad.data import DataLoader
from minigrad.data.mnist import normalized_mnist
from minigrad.models import LeNet5
from minigrad.nn import functional as F
from minigrad.optim import SGD, lr_scheduler
from minigrad.plot import plot_quantization_levels, plot_tradeoff
from minigrad.report import format_table
from minigrad.timing import median_seconds
from minigrad.train import Callback, fit

DENSE_LR, FINETUNE_LR, CENTROID_LR = 0.05, 0.005, 0.1
HISTOGRAM_LAYER = "classifier.1"  # fc1: 48,000 of LeNet-5's 61,706 parameters
OBSERVERS = {"MinMax": quant.MinMaxObserver,
             "MovingAverage": quant.MovingAverageMinMaxObserver,
             "Histogram": quant.HistogramObserver,
             "Percentile 99.99": quant.PercentileObserver}


class Setup:
    """Data and budgets shared by the parts."""

    def __init__(self, args):
        limit, test_limit = (3000, 1000) if args.quick else (None, None)
        # One epoch on 3,000 images: smaller batches, more steps.
        self.train = DataLoader(normalized_mnist(args.data_dir, limit=limit),
                                batch_size=32 if args.quick else 64, shuffle=True)
        self.test = DataLoader(normalized_mnist(args.data_dir, train=False, limit=test_limit),
                               batch_size=1000)
        # Fine-tuning after quantization (QAT, centroids, ternary) is short: an epoch is the
        # first --finetune-images training images (1,000 in a quick run).
        self.finetune = DataLoader(normalized_mnist(args.data_dir, limit=1000 if args.quick
                                                    else args.finetune_images),
                                   batch_size=self.train.batch_size, shuffle=True)
        # The first 512 training images, in order: every PTQ model sees the same ones.
        self.calibration = DataLoader(normalized_mnist(args.data_dir, limit=512),
                                      batch_size=128)
        self.epochs = 1 if args.quick else args.epochs
        self.finetune_epochs = 1 if args.quick else 2
        self.bit_widths = [8, 4, 3, 2] if args.quick else [8, 7, 6, 5, 4, 3, 2]
        self.qat_configs = [("weights and activations", 4), ("weights only", 2)]
        if not args.quick:
            self.qat_configs.insert(1, ("weights and activations", 3))
        self.timing_repeats = 5 if args.quick else 30
        self.seed, self.progress, self.out = args.seed, not args.no_progress, args.out


# ----------------------------------------------------------------------------- shared steps
def accuracy(model, loader):
    """Top-1 accuracy of a float, fake-quantized or integer model (all return logits)."""
    model.eval()
    correct = 0
    with mg.no_grad():
        for x, y in loader:
            correct += int((model(x).numpy().argmax(axis=1) == y.numpy()).sum())
    return correct / len(loader.dataset)


def train(model, loader, epochs, lr, setup, desc, callbacks=()):
    """SGD with momentum and a cosine learning rate, stepped per batch; ``desc`` labels the
    progress bar (or the per-epoch lines)."""
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    fit(model, loader, optimizer, F.cross_entropy, epochs, scheduler=scheduler,
        scheduler_interval="step", callbacks=callbacks, progress=setup.progress, desc=desc)


def ptq(model, qconfig, setup):
    """Static post-training quantization: prepare, calibrate, convert to integers."""
    prepared = quant.prepare(model, qconfig)
    with mg.no_grad():
        for x, _ in setup.calibration:
            prepared(x)
    return quant.convert(prepared)


class FreezeObservers(Callback):
    """QAT: stop moving the activation ranges after the first epoch, so the last epochs
    train against fixed grids (the ones ``convert`` will use)."""

    def __init__(self, prepared):
        self.prepared = prepared

    def on_epoch_end(self, state):
        if state.epoch == 1:
            self.prepared.freeze_observers()


def qat(model, qconfig, setup, desc):
    """Quantization-aware fine-tuning of the trained float model, then convert."""
    prepared = quant.prepare_qat(model, qconfig)
    train(prepared, setup.finetune, setup.finetune_epochs, FINETUNE_LR, setup, desc,
          [FreezeObservers(prepared)])
    return quant.convert(prepared)


def layers(model):
    """{name: module} of the Conv2d and Linear layers: what holds weights."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def weights_only_config(bits):
    return quant.QConfig(activation_bits=8, weight_bits=bits)


def points(accuracy_value, reference):
    """Accuracy change in percentage points."""
    return 100 * (accuracy_value - reference)


# ----------------------------------------------------------------------------- parts
def part_a(model, fp32, setup):
    """int8 PTQ: per-tensor against per-channel weights, then the activation observers."""
    configs = [("per tensor", "MinMax", False)] + [("per channel", name, True)
                                                   for name in OBSERVERS]
    cli.stage("A. int8 PTQ", f"{len(configs)} choices of weight scales and activation observer, "
              "each calibrated and converted with 8-bit and with 4-bit activations")
    rows, models = [("fp32", "-", fp32, 0.0, None)], {}
    for weights, observer, per_channel in configs:
        def config(activation_bits):
            return quant.QConfig(activation_bits=activation_bits, weight_bits=8,
                                 per_channel=per_channel,
                                 activation_observer=OBSERVERS[observer])
        models[weights, observer] = qmodel = ptq(model, config(8), setup)
        int8 = accuracy(qmodel, setup.test)
        rows.append((weights, observer, int8, points(int8, fp32),
                     accuracy(ptq(model, config(4), setup), setup.test)))
    print("\nA. int8 post-training quantization: weights, and the activation observer "
          f"(calibrated on {len(setup.calibration.dataset)} training images)")
    print(format_table(["int8 weights", "activation observer", "accuracy", "drop (points)",
                        "with 4-bit activations"], rows, [None, None, ".2%", "+.2f", ".2%"]))
    return rows, models["per channel", "MinMax"]


def part_b(model, fp32, setup):
    """PTQ accuracy against bit width (per-channel weights, MinMax activations)."""
    cli.stage("B. bit widths", f"PTQ at {', '.join(map(str, setup.bit_widths))} bits, weights "
              "only and weights and activations")
    curves = {"weights only (8-bit activations)": [], "weights and activations": []}
    for bits in setup.bit_widths:
        for label, config in zip(curves, (weights_only_config(bits),
                                          quant.default_qconfig(bits))):
            curves[label].append((bits, accuracy(ptq(model, config, setup), setup.test)))
    print("\nB. PTQ accuracy against bit width (per-channel weights)")
    print(format_table(["bits", *curves],
                       [(bits, *(dict(c)[bits] for c in curves.values()))
                        for bits in setup.bit_widths], [None, ".2%", ".2%"]))
    path = os.path.join(setup.out, "accuracy_vs_bits.png")
    lines = {**curves, "fp32": [(bits, fp32) for bits in setup.bit_widths]}
    plot_tradeoff({label: [(bits, 100 * value) for bits, value in points]
                   for label, points in lines.items()}, "bits", "test accuracy (%)", path=path,
                  xticks=setup.bit_widths, title="LeNet-5, post-training quantization")
    return curves, path


def uniform_per_tensor(w, bits):
    """Symmetric per-tensor quantization: s = max|w| / (2^(b-1) - 1), levels s k."""
    largest = float(np.abs(w).max())
    qp = quant.calculate_qparams(-largest, largest, bits, symmetric=True, restricted=True)
    return quant.dequantize(quant.quantize(w, qp), qp)


def levels_of(quantize_weights, w):
    """The values ``quantize_weights`` can give on ``w``'s range (run on a fine grid)."""
    largest = float(np.abs(w).max())
    return np.unique(quantize_weights(np.linspace(-largest, largest, 100_001, dtype=np.float32)))


def part_c(model, setup, bits=4):
    """One layer's weights and where each 4-bit scheme puts its levels."""
    cli.stage("C. levels", f"{HISTOGRAM_LAYER}'s weights at {bits} bits: uniform, power of two, "
              "k-means")
    w = layers(model)[HISTOGRAM_LAYER].weight.numpy()
    centroids, labels = quant.kmeans_1d(w.ravel(), 2 ** bits)
    per_channel = quant.fake_quantize_weight(copy.deepcopy(layers(model)[HISTOGRAM_LAYER]),
                                             bits).weight.numpy()
    schemes = {  # name: (levels drawn or None, the quantized weights)
        "uniform, per tensor": (levels_of(lambda v: uniform_per_tensor(v, bits), w),
                                uniform_per_tensor(w, bits)),
        "uniform, per channel": (None, per_channel),
        "power of two": (levels_of(lambda v: quant.power_of_two_quantize(v, bits), w),
                         quant.power_of_two_quantize(w, bits)),
        "k-means": (centroids, centroids[labels].reshape(w.shape))}
    rows = [(name, len(np.unique(q)), float(np.linalg.norm(w - q) / np.linalg.norm(w)))
            for name, (_, q) in schemes.items()]
    print(f"\nC. {HISTOGRAM_LAYER}'s {w.size:,} weights at {bits} bits: values used and the "
          "relative error ||w - w_q|| / ||w||")
    print(format_table(["scheme", "distinct values", "relative error"], rows, [None, "d", ".3f"]))
    path = os.path.join(setup.out, "levels.png")
    plot_quantization_levels(w, {f"{name} ({bits}-bit)": levels for name, (levels, _)
                                 in schemes.items() if levels is not None}, path=path,
                             title=f"LeNet-5 {HISTOGRAM_LAYER} weights and the quantization "
                                   "levels")
    return rows, path


def part_d(model, fp32, curves_b, setup):
    """PTQ against QAT (a short fine-tune with fake quantization) at 4 bits and below."""
    ptq_by_config = {("weights and activations", bits): value
                     for bits, value in curves_b["weights and activations"]}
    ptq_by_config.update({("weights only", bits): value
                          for bits, value in curves_b["weights only (8-bit activations)"]})
    cli.stage("D. QAT", f"{len(setup.qat_configs)} quantized LeNet-5s fine-tuned with fake "
              "quantization", images=len(setup.finetune.dataset), epochs=setup.finetune_epochs)
    rows = []
    for what, bits in setup.qat_configs:
        config = quant.default_qconfig(bits) if what != "weights only" else \
            weights_only_config(bits)
        after_qat = accuracy(qat(model, config, setup, f"D QAT {bits}-bit {what}"), setup.test)
        before = ptq_by_config[what, bits]
        rows.append((f"{bits}-bit {what}", before, points(before, fp32), after_qat,
                     points(after_qat, fp32)))
    print(f"\nD. PTQ against QAT: fake-quantized fine-tuning, {setup.finetune_epochs} epoch(s) of "
          f"{len(setup.finetune.dataset):,} images at lr {FINETUNE_LR}, observers frozen after "
          f"the first; fp32 {fp32:.2%}")
    print(format_table(["quantized", "PTQ", "vs fp32", "QAT", "vs fp32 "], rows,
                       [None, ".2%", "+.2f", ".2%", "+.2f"]))
    return rows


def quantize_all_weights(model, quantize_layer):
    """A copy of ``model`` with ``quantize_layer(module)`` applied to each Conv2d/Linear."""
    model = copy.deepcopy(model)
    for module in layers(model).values():
        quantize_layer(module)
    return model


def power_of_two_layer(bits):
    def quantize_layer(module):
        module.weight.data[...] = quant.power_of_two_quantize(module.weight.numpy(), bits)
    return quantize_layer


def finetune_centroids(model, setup, desc):
    """One epoch of SGD on the centroids (and biases); each layer's centroids at
    CENTROID_LR k / n (``quant.centroid_param_groups`` says why)."""
    optimizer = SGD(quant.centroid_param_groups(model, CENTROID_LR), lr=FINETUNE_LR,
                    momentum=0.9)
    fit(model, setup.finetune, optimizer, F.cross_entropy, 1, progress=setup.progress,
        desc=desc)


def part_e(model, fp32, setup):
    """Weights only (float activations): uniform, power-of-two, k-means, ternary."""
    cli.stage("E. weight grids", "uniform, power-of-two, k-means and ternary weights at 4 and 2 "
              "bits; k-means centroids and ternary weights then fine-tuned",
              images=len(setup.finetune.dataset), epochs=1)
    rows, tuned_models = [], {}
    fine_tunes = {"k-means": lambda m, desc: finetune_centroids(m, setup, desc),
                  "ternary (TWN)": lambda m, desc: train(m, setup.finetune, 1, FINETUNE_LR,
                                                         setup, desc)}
    for bits in (4, 2):
        schemes = {"uniform (per channel)": lambda m: quant.fake_quantize_weight(m, bits),
                   "power of two": power_of_two_layer(bits),
                   "k-means": lambda m: quant.kmeans_share(m, bits=bits)}
        if bits == 2:
            schemes["ternary (TWN)"] = quant.ternarize
        for name, quantize_layer in schemes.items():
            quantized = quantize_all_weights(model, quantize_layer)
            before, tuned = accuracy(quantized, setup.test), None
            if name in fine_tunes:
                fine_tunes[name](quantized, f"E {name} {bits}-bit")
                tuned = accuracy(quantized, setup.test)
                tuned_models[name, bits] = quantized
            rows.append((name, bits, before, tuned))
    print(f"\nE. Weight grids (activations stay float); fp32 {fp32:.2%}; fine-tune: 1 epoch of "
          f"{len(setup.finetune.dataset):,} images, "
          f"k-means centroids at lr {CENTROID_LR} k/n (on the cluster's mean gradient), "
          f"biases and ternary weights at lr {FINETUNE_LR}")
    print(format_table(["weights", "bits", "accuracy", "after fine-tune"], rows,
                       [None, "d", ".2%", ".2%"]))
    return rows, tuned_models["k-means", 4]


def part_f(model, fp32, int8_model, kmeans4, setup):
    """Bytes each model needs for inference (``quant.model_size``)."""
    cli.stage("F. model size", "the bytes each model needs, and its accuracy")
    fc = [name for name in layers(model) if name.startswith("classifier")]
    mixed = {"": quant.default_qconfig(8), **{name: weights_only_config(4) for name in fc}}
    float16 = quant.to_float16(copy.deepcopy(model))
    models = {"fp32": model, "int8 per channel (PTQ)": int8_model,
              "4-bit weights and activations (PTQ)": ptq(model, quant.default_qconfig(4), setup),
              "mixed: 8-bit conv, 4-bit fc weights": ptq(model, mixed, setup),
              "k-means 4-bit weights (fine-tuned)": kmeans4, "float16 weights": float16}
    total = quant.model_size(model).total
    rows = [(name, quant.model_size(m).total, quant.model_size(m).total / total,
             accuracy(m, setup.test)) for name, m in models.items()]
    print("\nF. Model size (weights, codebooks, scales, zero points, biases)")
    print(format_table(["model", "bytes", "of fp32", "accuracy"], rows,
                       [None, ",d", ".1%", ".2%"]))
    print(quant.model_size(int8_model).table())
    return rows


def part_g(model, int8_model, setup, batch=256):
    """Latency at batch 256, ours and PyTorch's; the saved int8 model loads back identical."""
    cli.stage("G. inference", f"fp32 against int8 at batch {batch}, median of "
              f"{setup.timing_repeats} turns; the int8 model saved and loaded back")
    x = next(iter(DataLoader(setup.test.dataset, batch_size=batch)))[0]
    model.eval()

    def fp32_forward():
        with mg.no_grad():
            model(x)
    calls = {"minigrad fp32 (Numba)": fp32_forward,
             "minigrad int8 (converted)": lambda: int8_model(x)}
    calls.update(torch_lenet_calls(model, setup, x) or {})
    ms = dict(zip(calls, (1e3 * seconds for seconds in
                          median_seconds(list(calls.values()), setup.timing_repeats))))
    ratios = {"minigrad": ms["minigrad fp32 (Numba)"] / ms["minigrad int8 (converted)"]}
    if "torch int8 (x86)" in ms:
        ratios["torch"] = ms["torch fp32"] / ms["torch int8 (x86)"]
    fp32_ms = {name: ms["minigrad fp32 (Numba)" if name.startswith("minigrad") else
                        "torch fp32"] for name in ms}
    print(f"\nG. Inference at batch {batch} (median ms; int8 speed = fp32 time / int8 time)")
    print(format_table(["model", "ms", "images/s", "speed vs its fp32"],
                       [(name, t, 1e3 * batch / t, fp32_ms[name] / t) for name, t in ms.items()],
                       [None, ".2f", ",.0f", ".2f"]))
    if "torch" in ratios:
        ours_vs_torch = ms["minigrad int8 (converted)"] / ms["torch int8 (x86)"]
        print(f"int8 speed-up: minigrad {ratios['minigrad']:.2f}x, torch {ratios['torch']:.2f}x"
              f"; minigrad int8 takes {ours_vs_torch:.2f}x torch int8's time")
    else:
        print("torch is not installed: PyTorch's quantized LeNet-5 is skipped")

    path = os.path.join(setup.out, "lenet5_int8.npz")
    quant.save_quantized(int8_model, path)
    identical = bool(np.array_equal(quant.load_quantized(path)(x).numpy(), int8_model(x).numpy()))
    print(f"saved {path} ({os.path.getsize(path):,} bytes); loaded back, outputs identical: "
          f"{identical}")
    return {"ms": ms, "ratios": ratios, "identical": identical}


def onnx_tools_missing():
    """The names of the packages part H needs and lacks (onnx, onnxruntime)."""
    return [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]


def onnx_runners(net, path, threads):
    """(minigrad's executor, ONNX Runtime on the file at ``path``): each a function of a
    batch of images (an array) that returns the logits."""
    from minigrad.onnx.check import session
    sess = session(path, threads, spin=False)
    input_name = sess.get_inputs()[0].name

    def ours(x):
        with mg.no_grad():
            return net(mg.tensor(x)).numpy()

    def theirs(x):
        return sess.run(None, {input_name: x})[0]
    return ours, theirs


def in_batches(run, images, batch):
    return np.concatenate([run(images[i:i + batch]) for i in range(0, len(images), batch)])


def part_h(model, int8_model, setup, batches=(1, 256)):
    """Deploying: both models exported to ONNX and run in ONNX Runtime beside minigrad's own
    executor, on the test images: accuracies, the largest output difference, file bytes and
    latency at batch 1 and 256."""
    cli.stage("H. deploying", "the fp32 and int8 models exported to ONNX and run in ONNX "
              "Runtime beside minigrad, on the test images")
    missing = onnx_tools_missing()
    if missing:
        print(f"H skipped: {' and '.join(missing)} not installed; pip install -e \".[onnx]\" "
              "adds them")
        return None
    import onnxruntime

    from minigrad import onnx as mg_onnx

    images, labels = (np.concatenate(arrays) for arrays in zip(
        *((x.numpy(), y.numpy()) for x, y in setup.test)))
    model.eval()
    # As many threads as NumPy's BLAS takes by default; without spinning, ONNX Runtime's
    # idle threads leave the cores to minigrad's call that comes next in the turns.
    threads = os.cpu_count()
    rows, calls, paths = [], {}, []
    for name, net in {"fp32": model, "int8 per channel (PTQ)": int8_model}.items():
        paths.append(os.path.join(setup.out, f"lenet5_{name.split()[0]}.onnx"))
        mg_onnx.export(net, mg.tensor(images[:1]), paths[-1])
        runners = dict(zip(("minigrad", "ORT"), onnx_runners(net, paths[-1], threads)))
        ours, theirs = (in_batches(run, images, setup.test.batch_size)
                        for run in runners.values())
        gap = float(np.abs(ours - theirs).max())
        if net is int8_model:  # in output codes: y = s (q - z)
            gap = int(np.rint(gap / int8_model[-1].scale))
        rows.append([name, *(float((out.argmax(axis=1) == labels).mean()) for out in
                             (ours, theirs)), gap, os.path.getsize(paths[-1])])
        calls.update({(name, b, framework): functools.partial(run, images[:b])
                      for b in batches for framework, run in runners.items()})
    ms = dict(zip(calls, (1e3 * seconds for seconds in
                          median_seconds(list(calls.values()), setup.timing_repeats))))
    for row in rows:
        row += [ms[row[0], b, framework] for b in batches for framework in ("minigrad", "ORT")]
    print(f"\nH. ONNX: minigrad's executor against ONNX Runtime {onnxruntime.__version__} "
          f"({threads} intra-op threads) on {len(labels):,} test images; difference: the "
          "largest |logit difference| (fp32), the largest output code difference (int8); "
          f"median ms of {setup.timing_repeats} turns")
    print(format_table(
        ["model", "accuracy minigrad", "accuracy ORT", "max difference", ".onnx bytes",
         *(f"{framework} ms @{b}" for b in batches for framework in ("minigrad", "ORT"))],
        rows, [None, ".2%", ".2%", ".2g", ",d", *[".3f"] * 2 * len(batches)]))
    print(f"wrote {' and '.join(paths)}; look inside with python -m minigrad.onnx check "
          f"{paths[-1]}")
    return rows


# ----------------------------------------------------------------------------- PyTorch
def torch_lenet_calls(model, setup, x):
    """PyTorch's fp32 and int8 LeNet-5 (``torch_int8_calls``), or None without torch."""
    try:
        import torch
        from torch.ao import quantization as tq
    except ImportError:
        return None
    with warnings.catch_warnings():  # eager mode is deprecated (torchao replaces it), still works
        warnings.simplefilter("ignore")
        return torch_int8_calls(torch, tq, model, setup, x)


def torch_int8_calls(torch, tq, model, setup, x):
    """{name: forward at ``x``} for PyTorch's fp32 LeNet-5 holding our weights and its eager
    int8 version (fuse conv/linear + ReLU, observers, calibrate on our 512 images, convert;
    x86 engine). Also prints torch int8's test accuracy."""
    float_model = torch_lenet5(torch, tq, model).eval()
    int8 = copy.deepcopy(float_model)
    tq.fuse_modules(int8, [["conv1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"],
                           ["fc2", "relu4"]], inplace=True)
    torch.backends.quantized.engine = "x86"
    int8.qconfig = tq.get_default_qconfig("x86")
    tq.prepare(int8, inplace=True)
    with torch.no_grad():
        for images, _ in setup.calibration:
            int8(torch.from_numpy(images.numpy()))
    tq.convert(int8, inplace=True)
    with torch.no_grad():
        correct = sum(int((int8(torch.from_numpy(images.numpy())).argmax(1).numpy()
                           == labels.numpy()).sum()) for images, labels in setup.test)
    print(f"torch int8 LeNet-5 (x86 engine, same weights and calibration images): test "
          f"accuracy {correct / len(setup.test.dataset):.2%}")
    batch = torch.from_numpy(x.numpy())

    def forward(net):
        def call():
            with torch.no_grad():
                net(batch)
        return call
    return {"torch fp32": forward(float_model), "torch int8 (x86)": forward(int8)}


def torch_lenet5(torch, tq, model):
    """Our trained LeNet-5 as a torch module with QuantStub/DeQuantStub around it."""
    tnn = torch.nn

    class TorchLeNet5(tnn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.conv1, self.relu1 = tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU()
            self.conv2, self.relu2 = tnn.Conv2d(6, 16, 5), tnn.ReLU()
            self.pool = tnn.MaxPool2d(2)
            self.fc1, self.relu3 = tnn.Linear(400, 120), tnn.ReLU()
            self.fc2, self.relu4 = tnn.Linear(120, 84), tnn.ReLU()
            self.fc3 = tnn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(self.relu1(self.conv1(self.quant(x))))
            x = self.pool(self.relu2(self.conv2(x))).flatten(1)
            return self.dequant(self.fc3(self.relu4(self.fc2(self.relu3(self.fc1(x))))))

    net = TorchLeNet5()
    ours = dict(zip(["conv1", "conv2", "fc1", "fc2", "fc3"], layers(model).values()))
    with torch.no_grad():
        for name, layer in ours.items():
            getattr(net, name).weight.copy_(torch.from_numpy(layer.weight.numpy()))
            getattr(net, name).bias.copy_(torch.from_numpy(layer.bias.numpy()))
    return net


# ----------------------------------------------------------------------------- main
def main(argv=None):
    parser = cli.lesson_parser(__doc__, "08_quantization",
                               quick="3,000 images, 1 epoch, fewer widths and fine-tuning steps")
    parser.add_argument("--epochs", type=int, default=3, help="fp32 training epochs (default 3)")
    parser.add_argument("--finetune-images", type=int, default=10_000,
                        help="images per fine-tuning epoch (QAT, centroids, ternary)")
    args = cli.parse_args(parser, argv)
    start = time.perf_counter()
    setup = Setup(args)

    cli.stage("fp32 LeNet-5", "trained on the labels, the model every part quantizes",
              images=len(setup.train.dataset), epochs=setup.epochs)
    mg.manual_seed(setup.seed)  # the initial weights do not depend on the loaders' draws
    model = LeNet5()
    train(model, setup.train, setup.epochs, DENSE_LR, setup, "fp32 LeNet-5")
    fp32 = accuracy(model, setup.test)
    print(f"fp32 LeNet-5: test accuracy {fp32:.2%} ({setup.epochs} epoch(s) on "
          f"{len(setup.train.dataset):,} images, {len(setup.test.dataset):,} test images)")
    if args.quick:
        print("Quick run: one epoch leaves the fp32 model undertrained, so the fine-tunes of "
              "parts D and E also train it further and a fine-tuned model can end above fp32; "
              f"one test image is {100 / len(setup.test.dataset):.1f} points.")

    rows_a, int8_model = part_a(model, fp32, setup)
    curves_b, bits_png = part_b(model, fp32, setup)
    rows_c, levels_png = part_c(model, setup)
    rows_d = part_d(model, fp32, curves_b, setup)
    rows_e, kmeans4 = part_e(model, fp32, setup)
    rows_f = part_f(model, fp32, int8_model, kmeans4, setup)
    latency = part_g(model, int8_model, setup)
    rows_h = part_h(model, int8_model, setup)

    int8 = rows_a[2][2]
    print(f"\nSummary: fp32 {fp32:.2%}, int8 per-channel PTQ {int8:.2%} "
          f"({points(int8, fp32):+.2f} points) at {rows_f[1][2]:.1%} of the bytes, int8 "
          f"{latency['ratios']['minigrad']:.2f}x fp32's speed; "
          f"{time.perf_counter() - start:.0f} s in all")
    return {"fp32": fp32, "part_a": rows_a, "part_b": curves_b, "part_c": rows_c,
            "part_d": rows_d, "part_e": rows_e, "part_f": rows_f, "latency": latency,
            "part_h": rows_h,
            "plots": (bits_png, levels_png)}


if __name__ == "__main__":
    main()
