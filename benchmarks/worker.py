"""One framework in a process of its own, timing workloads on request: both ends of the line.

    python benchmarks/worker.py FRAMEWORK DEVICE [THREADS [OWNER]]

FRAMEWORK is "torch" or "minigrad-<kernel set>" ("minigrad-numba", "minigrad-numpy"; on
"cuda", minigrad's CuPy kernels whatever the set). The process imports its framework once and
keeps every workload it has built, so imports, JIT compiles and warm-up are paid once per run.
THREADS sets torch.set_num_threads (default, or 0: all cores); BLAS threads follow the
environment the parent gives the process (OPENBLAS_NUM_THREADS and the like, read when NumPy
loads). OWNER "kernels" makes a minigrad worker call backend.set_num_threads(THREADS,
owner="kernels"): the direct Numba kernels take the threads, BLAS one.

The protocol is JSON lines: the parent writes one request per line on the worker's stdin and
reads one answer per line from its stdout.
    {"op": "info"}                                -> {"framework", "version", "threads"}
                                                     (threads: blas, torch, kernels)
    {"op": "time", "spec": {...}, "repeats": R}   -> {"median": seconds} or {"error": "..."}
Closing stdin ends the worker. ``Worker`` below is the parent's end.
"""

import json
import os
import subprocess
import sys

import numpy as np

from minigrad.timing import median_seconds  # plain wall-clock (the torch worker uses it too)
from workloads import INPUTS, MODELS

WARMUP_BUILD, WARMUP_REQUEST = 3, 1  # untimed runs after building, and before each timing


class Framework:
    """The few calls in which minigrad and PyTorch differ, behind one interface."""

    def __init__(self, name, device, threads, owner="blas"):
        self.name, self.device = name, device
        if name == "torch":
            import torch

            torch.set_num_threads(threads or os.cpu_count())
            torch.manual_seed(0)
            self.lib, self.nn, self.optim = torch, torch.nn, torch.optim
            self.version = torch.__version__
            self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        else:
            import minigrad as mg
            import minigrad.nn
            import minigrad.optim
            from minigrad import backend

            if device == "cpu":
                backend.set_cpu_kernels(name.removeprefix("minigrad-"))
                if owner == "kernels":
                    backend.set_num_threads(threads or os.cpu_count(), owner=owner)
            mg.manual_seed(0)
            self.lib, self.nn, self.optim = mg, minigrad.nn, minigrad.optim
            self.version = mg.__version__
            self.sync = lambda: backend.synchronize(device)
        self.F = self.nn.functional

    def tensor(self, array, requires_grad=False):
        return self.lib.tensor(array, requires_grad=requires_grad, device=self.device)


def build_layers(nn, layers):
    """An ``nn.Sequential`` from workloads.MODELS' layer tuples."""
    make = {"conv": lambda c_in, c_out, kernel, padding: nn.Conv2d(c_in, c_out, kernel,
                                                                   padding=padding),
            "linear": nn.Linear, "maxpool": nn.MaxPool2d, "relu": nn.ReLU, "flatten": nn.Flatten}
    return nn.Sequential(*(make[layer](*args) for layer, *args in layers))


def build_step(fw, spec):
    """A function of no arguments that runs the workload ``spec`` once in framework ``fw``."""
    rng = np.random.default_rng(0)

    def random_input(shape, requires_grad=False):
        return fw.tensor(rng.standard_normal(shape, dtype=np.float32), requires_grad)

    if spec["kind"] == "matmul":
        a, b = (random_input((spec["n"], spec["n"])) for _ in range(2))
        return lambda: a @ b
    if spec["kind"] == "model":
        model = build_layers(fw.nn, MODELS[spec["model"]]).to(fw.device)
        x = random_input((spec["batch"],) + INPUTS[spec["model"]])
        if spec["mode"] == "inference":
            return inference_step(fw, model, x)
        y = fw.tensor(rng.integers(0, 10, size=spec["batch"]))
        optimizer = fw.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def train():
            loss = fw.F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return train
    conv = fw.nn.Conv2d(spec["c_in"], spec["c_out"], spec["kernel"], stride=spec["stride"],
                        padding=spec["padding"], groups=spec["groups"]).to(fw.device)
    x = random_input((spec["batch"], spec["c_in"], spec["size"], spec["size"]),
                     requires_grad=spec["mode"] == "train")
    if spec["mode"] == "train":
        return lambda: conv(x).sum().backward()
    if spec["mode"] == "inference":
        return inference_step(fw, fw.nn.Sequential(conv, fw.nn.ReLU()), x)
    return inference_step(fw, conv, x, eval_mode=False)


def inference_step(fw, model, x, eval_mode=True):
    if eval_mode:
        model.eval()

    def forward():
        with fw.lib.no_grad():
            model(x)
    return forward


def synced(step, sync):
    """``step`` followed by waiting for the device, so a timing covers the work itself."""
    def call():
        step()
        sync()
    return call


def blas_threads():
    """BLAS threads as threadpoolctl reports them (None without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return max((pool["num_threads"] for pool in threadpool_info()
                if pool["user_api"] == "blas"), default=None)


def serve(framework, device, threads, owner, requests, answers):
    """Answer the JSON-line ``requests`` (an iterable of lines) on the file ``answers``."""
    fw = Framework(framework, device, threads, owner)
    steps = {}
    for line in requests:
        request = json.loads(line)
        if request["op"] == "info":
            torch_threads = fw.lib.get_num_threads() if framework == "torch" else None
            kernel_threads = (None if framework == "torch"
                              else fw.lib.backend.threads.kernel_threads())
            answer = {"framework": framework, "version": fw.version,
                      "threads": {"blas": blas_threads(), "torch": torch_threads,
                                  "kernels": kernel_threads}}
        else:
            answer = time_request(fw, steps, request)
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def time_request(fw, steps, request):
    """{"median": seconds} for the request's spec, or {"error": text} if building or running
    it raised (an unsupported option, say): the row then reads "n/a" instead of crashing."""
    key = json.dumps(request["spec"], sort_keys=True)
    try:
        if key not in steps:
            steps[key] = synced(build_step(fw, request["spec"]), fw.sync)
            for _ in range(WARMUP_BUILD):  # JIT compiles, allocator and caches
                steps[key]()
        return {"median": median_seconds([steps[key]], request["repeats"], WARMUP_REQUEST)[0]}
    except Exception as error:  # reported to the parent, which prints it in the row
        steps.pop(key, None)
        return {"error": f"{type(error).__name__}: {error}"}


class Worker:
    """The parent's end: starts ``worker.py FRAMEWORK DEVICE THREADS OWNER``, sends it requests.

    ``env`` is added to this process's environment before the worker starts, so variables
    such as OPENBLAS_NUM_THREADS take effect before the worker imports NumPy."""

    def __init__(self, framework, device="cpu", threads=None, env=None, owner="blas"):
        self.framework = framework
        self.process = subprocess.Popen(
            [sys.executable, __file__, framework, device, str(threads or 0), owner],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})

    def request(self, **message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.framework} exited (code {self.process.wait()}) "
                               f"on {message}; its stderr is above")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


if __name__ == "__main__":
    # Keep fd 1 for the protocol: anything a library prints (Numba, CuPy) goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None,
          sys.argv[4] if len(sys.argv) > 4 else "blas", sys.stdin, protocol)
