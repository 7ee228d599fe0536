"""LeNet-5 inference, float32 and int8, in minigrad's own executor and in ONNX Runtime.

    python benchmarks/onnx_inference.py [--quick] [--rounds 4] [--repeats 30] [--threads 1]

The models: ``minigrad.models.LeNet5`` with its random initial weights (seed 0: latency does
not depend on the values), and its int8 version by static post-training quantization as
lessons/08_quantization.py makes it (``quant.prepare``, calibration on the first 512 bundled
MNIST training images, ``quant.convert``; per-channel int8 weights, uint8 activations). Both
are exported with ``minigrad.onnx.export`` (the int8 graph uses ONNX's integer operators,
QLinearConv and MatMulInteger: see minigrad/onnx/quantized.py). Inputs are bundled MNIST test
images, normalized: the first one for batch 1, the first 256 for batch 256.

Each framework runs in a process of its own (this file with ``--worker``), started afresh in
every round, the order alternating over rounds (minigrad first, then ONNX Runtime first, ...),
so neither inherits the other's threads, caches or allocator. A worker times its four calls
(two models x two batch sizes) in turns with ``minigrad.timing.times_in_turns``: warm-up
calls (Numba's compilation, ONNX Runtime's first runs), then ``--repeats`` timed rounds.
The table gives each call's median over every timed run of every round, with its min-max.

Threads: ``--threads N`` (default 1) is given to both sides: minigrad's worker starts with
OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS = N (NumPy's BLAS runs the float32 model's GEMMs; Numba's
parallel loops the pooling and int8 kernels), ONNX Runtime's with intra_op_num_threads = N and
one inter-op thread. The header prints what each worker reports.

Before the table, the two frameworks' outputs at batch 256 are compared (float32: the largest
|logit difference|; int8: the largest difference in output codes, |dy| / s_out), so the two
sides are known to compute the same thing. ``--quick``: 1 round each way, 3 repeats.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from run import framework_order, thread_env
from worker import blas_threads

BATCHES = (1, 256)
MODELS = ("float32", "int8")
FRAMEWORKS = ("minigrad", "onnxruntime")
CALIBRATION_IMAGES = 512


# ----------------------------------------------------------------------------- parent
def build(folder):
    """Write the models (minigrad's files and the .onnx), the inputs and the int8 output
    scale into ``folder``."""
    import minigrad as mg
    from minigrad import onnx as mg_onnx
    from minigrad import quant
    from minigrad.data import DataLoader
    from minigrad.data.mnist import normalized_mnist
    from minigrad.models import LeNet5

    mg.manual_seed(0)
    model = LeNet5().eval()
    prepared = quant.prepare(model, quant.default_qconfig(8))
    with mg.no_grad():
        for x, _ in DataLoader(normalized_mnist(limit=CALIBRATION_IMAGES), batch_size=128):
            prepared(x)
    int8 = quant.convert(prepared)
    images = next(iter(DataLoader(normalized_mnist(train=False, limit=max(BATCHES)),
                                  batch_size=max(BATCHES))))[0].numpy()
    np.save(os.path.join(folder, "images.npy"), images)
    mg.save(model.state_dict(), os.path.join(folder, "float32.npz"))
    quant.save_quantized(int8, os.path.join(folder, "int8.npz"))
    for name, m in zip(MODELS, (model, int8)):
        mg_onnx.export(m, mg.tensor(images[:1]), os.path.join(folder, f"{name}.onnx"))
    return {"int8 output scale": int8[-1].scale,
            "onnx bytes": {name: os.path.getsize(os.path.join(folder, f"{name}.onnx"))
                           for name in MODELS}}


def run_worker(framework, folder, round_index, args):
    """Start one worker process, wait for it, and return what it wrote."""
    result = os.path.join(folder, f"{framework}-{round_index}.json")
    command = [sys.executable, __file__, "--worker", framework, folder, "--result", result,
               "--repeats", str(args.repeats), "--threads", str(args.threads)]
    if round_index == 0:
        command.append("--save-outputs")
    subprocess.run(command, check=True, env={**os.environ, **thread_env(args.threads)})
    with open(result) as file:
        return json.load(file)


def compare_outputs(folder, output_scale):
    """{model: the largest difference between the frameworks at batch 256}: |logit
    difference| for float32, output codes for int8."""
    ours, theirs = (np.load(os.path.join(folder, f"outputs-{fw}.npz")) for fw in FRAMEWORKS)
    float_gap = float(np.abs(ours["float32"] - theirs["float32"]).max())
    code_gap = int(np.rint(np.abs(ours["int8"] - theirs["int8"]) / output_scale).max())
    return {"float32": float_gap, "int8": code_gap}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round each way, 3 repeats")
    parser.add_argument("--rounds", type=int, default=4,
                        help="worker processes per framework, the order alternating")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per round")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/Numba threads of minigrad and intra-op threads of ONNX "
                             "Runtime (default 1)")
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "FOLDER"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--save-outputs", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker, args)
    if args.quick:
        args.rounds, args.repeats = 2, 3
    with tempfile.TemporaryDirectory(prefix="onnx_inference_") as folder:
        facts = build(folder)
        times = {fw: {} for fw in FRAMEWORKS}
        infos = {}
        for round_index in range(args.rounds):
            for fw in framework_order(FRAMEWORKS, round_index):
                answer = run_worker(fw, folder, round_index, args)
                infos[fw] = answer["info"]
                for key, seconds in answer["times"].items():
                    times[fw].setdefault(key, []).extend(seconds)
        gaps = compare_outputs(folder, facts["int8 output scale"])
    print_report(times, infos, gaps, facts, args)
    return {"times": times, "gaps": gaps, "infos": infos, **facts}


def print_report(times, infos, gaps, facts, args):
    from minigrad.report import format_table

    def ms(fw, key):
        values = times[fw][key]
        return 1e3 * statistics.median(values), 1e3 * min(values), 1e3 * max(values)

    print(f"LeNet-5 inference (random weights, seed 0), {args.rounds} worker processes per "
          f"framework (order alternating), {args.repeats} timed calls each")
    for fw in FRAMEWORKS:
        print(f"  {fw} {infos[fw]['version']}: {infos[fw]['threads']}")
    print(f"  .onnx files: float32 {facts['onnx bytes']['float32']:,} bytes, int8 "
          f"{facts['onnx bytes']['int8']:,} bytes")
    print(f"  outputs at batch 256: float32 max |logit difference| {gaps['float32']:.2e}, "
          f"int8 max output code difference {gaps['int8']}")
    rows = []
    for model in MODELS:
        for batch in BATCHES:
            key = f"{model} {batch}"
            ours, theirs = ms("minigrad", key), ms("onnxruntime", key)
            rows.append((model, batch, "{:.3f} [{:.3f}-{:.3f}]".format(*ours),
                         "{:.3f} [{:.3f}-{:.3f}]".format(*theirs), theirs[0] / ours[0]))
    print("\nmedian ms [min-max]; ratio < 1: ONNX Runtime is faster")
    print(format_table(["model", "batch", "minigrad ms", "ONNX Runtime ms",
                        "ratio ORT / minigrad"], rows, [None, "d", None, None, ".2f"]))


# ----------------------------------------------------------------------------- worker
def minigrad_calls(folder, images):
    """({"float32 1": call, ...}, info) for minigrad's own executor; a call returns the
    output array."""
    import numba

    import minigrad as mg
    from minigrad import quant
    from minigrad.models import LeNet5

    model = LeNet5()
    model.load_state_dict(mg.load(os.path.join(folder, "float32.npz")))
    model.eval()
    int8 = quant.load_quantized(os.path.join(folder, "int8.npz"))

    def forward(net, x):
        def call():
            with mg.no_grad():
                return net(x).numpy()
        return call
    calls = {f"{name} {batch}": forward(net, mg.tensor(images[:batch]))
             for name, net in zip(MODELS, (model, int8)) for batch in BATCHES}
    info = {"version": mg.__version__,
            "threads": f"BLAS threads {blas_threads()}, Numba threads {numba.get_num_threads()}"}
    return calls, info


def onnxruntime_calls(folder, images, threads):
    """The same for ONNX Runtime on the exported files."""
    import onnxruntime

    from minigrad.onnx.check import session

    def run(sess, x):
        feeds = {sess.get_inputs()[0].name: x}
        return lambda: sess.run(None, feeds)[0]
    sessions = {name: session(os.path.join(folder, f"{name}.onnx"), threads) for name in MODELS}
    calls = {f"{name} {batch}": run(sess, images[:batch])
             for name, sess in sessions.items() for batch in BATCHES}
    return calls, {"version": onnxruntime.__version__,
                   "threads": f"intra_op_num_threads {threads}, inter_op_num_threads 1"}


def worker_main(framework, folder, args):
    """Time the four calls of ``framework`` in turns; write {"times", "info"} to --result."""
    from minigrad.timing import times_in_turns

    images = np.load(os.path.join(folder, "images.npy"))
    calls, info = (minigrad_calls(folder, images) if framework == "minigrad"
                   else onnxruntime_calls(folder, images, args.threads))
    if args.save_outputs:
        np.savez(os.path.join(folder, f"outputs-{framework}.npz"),
                 **{name: calls[f"{name} {max(BATCHES)}"]() for name in MODELS})
    seconds = times_in_turns(list(calls.values()), args.repeats, warmup=3)
    with open(args.result, "w") as file:
        json.dump({"times": dict(zip(calls, seconds)), "info": info}, file)
    return None


if __name__ == "__main__":
    main()
