"""Look inside an ONNX file and time it in ONNX Runtime: ``python -m minigrad.onnx check``.

    python -m minigrad.onnx check model.onnx [--input NAME=FILE.npy ...] [--batch 1 256]
                                             [--repeats 20] [--threads N]

prints the graph's inputs and outputs (shape, symbolic dims by name, dtype), how many nodes
of each op_type it holds, the file's size in bytes and its initializers' share, and the
latency of ``session.run`` at each batch size: the median and the min-max of ``--repeats``
timed runs, after a few untimed warm-up runs (the first runs allocate and pick kernels).

Inputs are random unless given: float inputs standard normal, 8-bit integer inputs uniform
codes over the whole type, booleans fair coins. The batch is the input's leading symbolic
dim; a given array is cut or repeated along axis 0 to each batch size when that axis is
symbolic, and used as it is otherwise. Any other symbolic dim needs a given array.

A missing file, a file that is not ONNX, a model ONNX Runtime refuses or a missing
``onnx``/``onnxruntime`` exits with status 2 and one line on stderr. The functions
(``describe``, ``session``, ``feeds_at``, ``latency``) are what the lessons and
benchmarks/onnx_inference.py call; onnx and onnxruntime are imported inside them.
"""

import argparse
import importlib
import os
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from minigrad.report import format_table
from minigrad.timing import times_in_turns

WARMUP = 3  # untimed runs before the timed ones
CODE_TYPES = (np.uint8, np.int8)


class CheckError(Exception):
    """A problem with the file or the request: the CLI prints it and exits with status 2."""


@dataclass
class ValueInfo:
    """A graph input or output: ``shape`` holds ints for fixed dims and the dim's name (str)
    for symbolic ones ("?" where the file names none)."""
    name: str
    shape: tuple
    dtype: np.dtype

    def shape_text(self):
        return " x ".join(str(d) for d in self.shape) if self.shape else "scalar"


@dataclass
class Description:
    """What ``describe`` reads from an ONNX file."""
    path: str
    inputs: list
    outputs: list
    op_counts: dict  # op_type -> node count, sorted by op_type
    file_bytes: int
    initializer_bytes: int
    opsets: dict = field(default_factory=dict)  # domain ("" is ONNX's own) -> version
    producer: str = ""

    @property
    def nodes(self):
        return sum(self.op_counts.values())


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise CheckError(f"{name} is not installed: pip install -e \".[onnx]\" "
                         "(or pip install onnx onnxruntime)") from None


def _value_info(value):
    from onnx import helper
    if value.type.WhichOneof("value") != "tensor_type":
        raise CheckError(f"{value.name!r} is a {value.type.WhichOneof('value')} value: only "
                         "graphs whose inputs and outputs are tensors are described here")
    tensor = value.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                  for d in tensor.shape.dim)
    return ValueInfo(value.name, shape, np.dtype(helper.tensor_dtype_to_np_dtype(
        tensor.elem_type)))


def describe(path):
    """The ``Description`` of the ONNX file at ``path``. CheckError if it is missing or is
    not an ONNX model."""
    onnx = _import("onnx")
    from onnx import numpy_helper
    if not os.path.isfile(path):
        raise CheckError(f"{path}: no such file")
    try:
        model = onnx.load(path)
    except Exception as error:  # protobuf's DecodeError and friends: not a ModelProto
        raise CheckError(f"{path}: not an ONNX model ({type(error).__name__}: {error})") from None
    # Stray bytes can parse as an empty ModelProto; every real model names its IR and opset.
    if model.ir_version == 0 or not model.opset_import:
        raise CheckError(f"{path}: not an ONNX model (no IR version or opset in it)")
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    op_counts = Counter(node.op_type if node.domain in ("", "ai.onnx")
                        else f"{node.domain}.{node.op_type}" for node in graph.node)
    return Description(
        path=path,
        # before IR 4, initializers were listed among the inputs too
        inputs=[_value_info(v) for v in graph.input if v.name not in initializers],
        outputs=[_value_info(v) for v in graph.output],
        op_counts=dict(sorted(op_counts.items())),
        file_bytes=os.path.getsize(path),
        initializer_bytes=sum(numpy_helper.to_array(init).nbytes for init in graph.initializer),
        opsets={o.domain: o.version for o in model.opset_import},
        producer=" ".join(filter(None, [model.producer_name, model.producer_version])))


def session(path, threads=None, spin=True):
    """An ``onnxruntime.InferenceSession`` on the CPU with ``threads`` intra-op threads (None:
    ONNX Runtime's default, one per physical core) and one inter-op thread. ``spin=False``
    stops its pool threads from busy-waiting after each run, which would take cores from
    whatever runs next in the same process (minigrad's kernels, when the two alternate)."""
    ort = _import("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no warnings about unused initializers
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT's Fail / InvalidGraph / NotImplemented
        raise CheckError(f"{path}: ONNX Runtime cannot load it: {error}") from None


def random_input(info, batch, rng):
    """A random array for ``info`` with its leading symbolic dim set to ``batch``."""
    shape = []
    for axis, dim in enumerate(info.shape):
        if isinstance(dim, int):
            shape.append(dim)
        elif axis == 0:
            shape.append(batch)
        else:
            raise CheckError(f"input {info.name!r} has the symbolic dim {dim!r} at axis {axis}:"
                             f" give it with --input {info.name}=FILE.npy")
    if info.dtype.kind == "f":
        return rng.standard_normal(shape).astype(info.dtype)
    if info.dtype.type in CODE_TYPES:
        limits = np.iinfo(info.dtype)
        return rng.integers(limits.min, limits.max, size=shape, endpoint=True, dtype=info.dtype)
    if info.dtype == np.bool_:
        return rng.random(shape) < 0.5
    raise CheckError(f"input {info.name!r} is {info.dtype}, which has no random values here "
                     f"(only float, uint8, int8, bool): give it with --input {info.name}=FILE.npy")


def check_given(info, array):
    """CheckError unless ``array`` fits ``info``: same dtype, rank and fixed dims."""
    if array.dtype != info.dtype:
        raise CheckError(f"--input {info.name}: the array is {array.dtype}, the graph input "
                         f"is {info.dtype}")
    fixed = [(axis, dim) for axis, dim in enumerate(info.shape) if isinstance(dim, int)]
    if array.ndim != len(info.shape) or any(array.shape[a] != d for a, d in fixed):
        raise CheckError(f"--input {info.name}: shape {array.shape} does not fit the graph "
                         f"input's ({info.shape_text()})")


def at_batch(info, array, batch):
    """``array`` cut or repeated along axis 0 to ``batch`` rows if that axis is symbolic."""
    if not info.shape or isinstance(info.shape[0], int):
        return array
    return np.resize(array, (batch, *array.shape[1:])) if len(array) != batch else array


def feeds_at(inputs, batch, given=None, seed=0):
    """{input name: array} for ``session.run`` at ``batch``: the ``given`` arrays (checked,
    then cut or repeated to the batch) and random ones for the rest."""
    given = given or {}
    unknown = sorted(set(given) - {info.name for info in inputs})
    if unknown:
        raise CheckError(f"--input {', '.join(unknown)}: the graph's inputs are "
                         f"{', '.join(info.name for info in inputs)}")
    rng = np.random.default_rng(seed)
    feeds = {}
    for info in inputs:
        if info.name in given:
            check_given(info, given[info.name])
            feeds[info.name] = at_batch(info, given[info.name], batch)
        else:
            feeds[info.name] = random_input(info, batch, rng)
    return feeds


def fixed_batch(inputs, batch):
    """The reason ``inputs`` cannot run at ``batch`` (an input whose axis 0 is a fixed size
    other than it), or None."""
    for info in inputs:
        if info.shape and isinstance(info.shape[0], int) and info.shape[0] != batch:
            return f"input {info.name!r} has a fixed batch of {info.shape[0]}"
    return None


@dataclass
class Latency:
    """Seconds of ``repeats`` timed runs."""
    times: list

    @property
    def median(self):
        return statistics.median(self.times)

    def ms(self):
        """(median, min, max) in milliseconds."""
        return 1e3 * self.median, 1e3 * min(self.times), 1e3 * max(self.times)


def latency(sess, feeds, repeats=20, warmup=WARMUP):
    """``Latency`` of ``sess.run(None, feeds)``: ``warmup`` untimed runs, then ``repeats``
    timed ones (``minigrad.timing``, as minigrad's own models are timed)."""
    if repeats < 1:
        raise ValueError(f"latency: repeats must be >= 1, got {repeats}")
    return Latency(times_in_turns([lambda: sess.run(None, feeds)], repeats, warmup)[0])


# ----------------------------------------------------------------------------- report
def describe_text(description):
    """The description as the CLI prints it."""
    d = description
    opsets = ", ".join(f"{domain or 'ai.onnx'} {version}" for domain, version in d.opsets.items())
    lines = [f"{d.path}: {d.file_bytes:,} bytes, of which initializers {d.initializer_bytes:,}"
             f" bytes; opset {opsets}" + (f"; produced by {d.producer}" if d.producer else "")]
    for title, values in (("inputs", d.inputs), ("outputs", d.outputs)):
        lines += ["", title, format_table(["name", "shape", "dtype"], [
            (v.name, v.shape_text(), str(v.dtype)) for v in values])]
    lines += ["", f"ops ({d.nodes} nodes)",
              format_table(["op_type", "count"], list(d.op_counts.items()))]
    return "\n".join(lines)


def parse_given(specs):
    """{name: array} from ``NAME=FILE.npy`` strings."""
    given = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise CheckError(f"--input {spec!r}: expected NAME=FILE.npy")
        try:
            given[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise CheckError(f"--input {name}: cannot read {path} as .npy ({error})") from None
    return given


def check(path, given_specs=(), batches=(1, 256), repeats=20, threads=None, out=None):
    """The ``check`` command: describe the file, run it at each batch size, print the lot (on
    ``out``, default stdout). Returns the ``Description`` and the latency table's rows."""
    out = out or sys.stdout
    description = describe(path)
    given = parse_given(given_specs)
    sess = session(path, threads)
    print(describe_text(description), file=out)
    ort = _import("onnxruntime")
    threads_text = f"{threads} intra-op thread(s)" if threads else "default threads"
    rows = []
    for batch in batches:
        reason = fixed_batch(description.inputs, batch)
        if reason:
            rows.append((batch, None, None, None, f"skipped: {reason}"))
            continue
        feeds = feeds_at(description.inputs, batch, given)
        try:
            outputs = sess.run(None, feeds)
        except Exception as error:  # ORT's RuntimeException on a bad feed, say
            raise CheckError(f"{path}: ONNX Runtime failed at batch {batch}: {error}") from None
        rows.append((batch, *latency(sess, feeds, repeats).ms(), "; ".join(
            f"{info.name} {np.shape(o)} {np.asarray(o).dtype}"
            for info, o in zip(description.outputs, outputs))))
    random = [info.name for info in description.inputs if info.name not in given]
    inputs_text = ", ".join([*(f"{name} given" for name in given),
                             *([f"{', '.join(random)} random"] if random else [])])
    print(f"\nlatency of session.run (ONNX Runtime {ort.__version__}, CPU, {threads_text}; "
          f"{WARMUP + 1} untimed runs, then {repeats} timed; inputs: {inputs_text})", file=out)
    print(format_table(["batch", "median ms", "min ms", "max ms", "outputs"], rows,
                       [None, ".3f", ".3f", ".3f", None]), file=out)
    return description, rows


def main(argv=None):
    """The CLI; returns the exit status (0, or 2 with one line on stderr)."""
    parser = argparse.ArgumentParser(prog="python -m minigrad.onnx",
                                     description="Tools for ONNX files.")
    commands = parser.add_subparsers(dest="command", required=True)
    checker = commands.add_parser("check", help="describe an ONNX file and time it in ONNX "
                                  "Runtime", description=__doc__.split("\n\n")[0])
    checker.add_argument("path", help="the .onnx file")
    checker.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                         help="an input's values (repeatable); the rest are random")
    checker.add_argument("--batch", type=int, nargs="+", default=[1, 256],
                         help="batch sizes to time (default 1 256)")
    checker.add_argument("--repeats", type=int, default=20,
                         help="timed runs per batch size (default 20)")
    checker.add_argument("--threads", type=int, default=None,
                         help="ONNX Runtime's intra-op threads (default: its own choice)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.batch) < 1:
        parser.error(f"--repeats and --batch must be >= 1, got {args.repeats} and {args.batch}")
    try:
        check(args.path, args.input, args.batch, args.repeats, args.threads)
    except CheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
