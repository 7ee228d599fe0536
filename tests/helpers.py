"""One mechanism for testing every op: an ``OpCase`` says how to draw inputs for an op and how to
call it in minigrad and in PyTorch; ``op_tests(cases)`` turns a list of cases into three tests,

* ``test_gradcheck``: backward equals central differences (float64, minigrad.testing);
* ``test_matches_torch``: forward values and input gradients equal PyTorch's (float32 and
  float64) on the case's fixed ``examples``, and, when PyTorch is installed, on inputs that
  Hypothesis draws as well;
* ``test_float16``: the op keeps float16 and its results follow float64's.

Hypothesis draws the shapes and keyword arguments, and a seed for the values; the values come
from a normal distribution, then ``domain`` moves them where the op is differentiable (positive
for log, away from 0 for abs, ...), so random ties and kinks cannot make a check flaky.

Where PyTorch's numbers come from: every test that compares with PyTorch takes the
``torch_reference`` fixture, and calls it with a name and a function of ``torch`` that returns
the inputs and PyTorch's results as arrays. The fixture has two sources:

* ``stored``, always: the arrays saved under that name in
  ``tests/reference/<test module>.npz.gz`` (a gzipped .npz, written by
  ``tests/reference/make_reference.py``), so a clone without PyTorch checks parity;
* ``live``, only collected when PyTorch is installed: the function runs now, and its arrays must
  equal the stored ones (a stale file fails here) before the test compares against them.
"""

import functools
import gzip
import importlib.util
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.testing import gradcheck

EXAMPLES = settings(max_examples=25, deadline=None, derandomize=True)


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable(n, max_dims=3):
    """``n`` shapes that broadcast together (some with size-1 or missing axes)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, max_dims=max_dims, max_side=4).map(
        lambda drawn: drawn.input_shapes)


def away_from_zero(x, gap=0.3):
    """Move values out of (-gap, gap): for ops with a kink or pole at 0."""
    return np.where(x >= 0, x + gap, x - gap)


def positive(x):
    return np.abs(x) + 0.5


@dataclass
class OpCase:
    """How to test one op.

    ``draw(data)`` returns ``(shapes, kwargs)`` for Hypothesis; ``examples`` lists fixed
    ``(shapes, kwargs)`` pairs, whose PyTorch results are stored (example i's values come from
    seed i); ``fn(*tensors, **kwargs)`` is the minigrad call and ``torch_fn(*tensors, **kwargs)``
    the PyTorch call; ``domain(i, array)`` adjusts the values of input i. ``no_grad_inputs`` lists inputs that are not differentiable (masks).
    ``gradcheck_marks``: pytest marks for this case's gradcheck only (``pytest.mark.slow`` for
    one that takes seconds; give it a smaller-shape twin so the fast subset still checks it).
    """

    name: str
    draw: Callable
    fn: Callable
    torch_fn: Callable
    examples: list = ()
    domain: Callable = staticmethod(lambda i, x: x)
    no_grad_inputs: tuple = ()
    dtypes: dict = field(default_factory=dict)  # input index -> dtype other than float
    gradcheck_marks: tuple = ()

    def arrays(self, data, dtype):
        """Inputs drawn by Hypothesis: shapes, kwargs and a seed for the values."""
        drawn_shapes, kwargs = self.draw(data)
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        return self.values(drawn_shapes, seed, dtype), kwargs

    def values(self, input_shapes, seed, dtype):
        rng = np.random.default_rng(seed)
        arrays = []
        for i, shape in enumerate(input_shapes):
            if i in self.dtypes:
                arrays.append(rng.integers(0, 2, size=shape).astype(self.dtypes[i]))
            else:
                arrays.append(self.domain(i, rng.standard_normal(shape)).astype(dtype))
        return arrays

    def requires_grad(self, i, array):
        return i not in self.no_grad_inputs and np.issubdtype(array.dtype, np.floating)


def op_tests(cases):
    """The two parametrized tests for a module's list of ``OpCase``s."""
    ids = [case.name for case in cases]
    gradcheck_cases = [pytest.param(case, marks=case.gradcheck_marks, id=case.name)
                       for case in cases]
    without_examples = [case.name for case in cases if not case.examples]
    assert not without_examples, f"cases without fixed examples: {without_examples}"

    @pytest.mark.parametrize("case", gradcheck_cases)
    @EXAMPLES
    @given(data=st.data())
    def test_gradcheck(case, data):
        arrays, kwargs = case.arrays(data, np.float64)
        tensors = [mg.tensor(a, requires_grad=case.requires_grad(i, a))
                   for i, a in enumerate(arrays)]
        assert gradcheck(lambda *xs: case.fn(*xs, **kwargs), tensors)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_matches_torch(case, dtype, torch_reference):
        # Every example's reference first: make_reference.py records them all even when
        # minigrad disagrees with one.
        references = [example_reference(torch_reference, case, i, dtype)
                      for i in range(len(case.examples))]
        for (_, kwargs), reference in zip(case.examples, references):
            assert_matches_reference(case, reference, kwargs)
        if torch_reference.source == "live":
            assert_matches_torch_on_drawn_inputs(case, dtype)

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_float16(case):
        assert_float16_follows_float64(case)

    return test_gradcheck, test_matches_torch, test_float16


def assert_float16_follows_float64(case):
    """float16 goes through the op: the output and the gradients stay float16, and are within
    float16 rounding of the same computation in float64 on the same (float16) values. Checked
    on the case's largest fixed example."""
    shapes_i, kwargs = max(case.examples, key=lambda ex: sum(np.prod(s) for s in ex[0]))
    halves = case.values(shapes_i, seed=0, dtype=np.float16)
    results = {}
    for dtype in (np.float16, np.float64):
        tensors = [mg.tensor(a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a,
                             requires_grad=case.requires_grad(i, a))
                   for i, a in enumerate(halves)]
        out = case.fn(*tensors, **kwargs)
        out.backward(mg.ones_like(out))
        results[dtype] = out, [t.grad for t in tensors if t.requires_grad]
    (out16, grads16), (out64, grads64) = results[np.float16], results[np.float64]
    tol = dict(rtol=2e-2, atol=2e-2)
    assert out16.dtype == np.float16, f"{case.name}: float16 inputs gave {out16.dtype}"
    np.testing.assert_allclose(out16.numpy().astype(np.float64), out64.numpy(), **tol,
                               err_msg=f"{case.name} forward in float16")
    for g16, g64 in zip(grads16, grads64):
        assert g16.dtype == np.float16, f"{case.name}: a float16 input got a {g16.dtype} grad"
        np.testing.assert_allclose(g16.numpy().astype(np.float64), g64.numpy(), **tol,
                                   err_msg=f"{case.name} gradient in float16")


def example_reference(torch_reference, case, i, dtype):
    """PyTorch's results for ``case.examples[i]`` in ``dtype`` (stored under
    ``<case>/<i>/<dtype>``)."""
    shapes_i, kwargs = case.examples[i]
    arrays = case.values(shapes_i, seed=i, dtype=dtype)
    return torch_reference(f"{case.name}/{i}/{np.dtype(dtype).name}",
                           lambda torch: torch_results(torch, case, arrays, kwargs))


@EXAMPLES
@given(data=st.data())
def assert_matches_torch_on_drawn_inputs(case, dtype, data):
    arrays, kwargs = case.arrays(data, dtype)
    assert_matches_reference(case, torch_results(import_torch(), case, arrays, kwargs), kwargs)


def import_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the test oracle: "
                                                ".venv/bin/pip install torch==2.13.0")
    # One thread: the oracle's tensors are tiny, and on a busy machine torch's spinning
    # worker threads made these tests several times slower.
    torch.set_num_threads(1)
    return torch


def tolerances(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def torch_results(torch, case, arrays, kwargs):
    """PyTorch's side of an op check, as arrays: the inputs (``input0``, ...), the output
    (``out``), the upstream gradient fed to backward (``upstream``) and the gradient of every
    differentiable input (``grad0``, ...).

    PyTorch always computes in float64 here: it is the oracle for the *exact* result, and our
    float32 output must be within float32 rounding of it. (Comparing with PyTorch's own float32
    output would compare two rounding errors: where our formula is the more precise one, as
    for GELU's tanh form at large negative inputs, the test would fail for the wrong reason.)
    """
    grad_flags = [case.requires_grad(i, a) for i, a in enumerate(arrays)]
    floating = [np.issubdtype(a.dtype, np.floating) for a in arrays]
    dtype = next(a.dtype for a, f in zip(arrays, floating) if f)
    theirs = [torch.tensor(a.astype(np.float64) if f else a, requires_grad=g)
              for a, f, g in zip(arrays, floating, grad_flags)]
    out = case.torch_fn(*theirs, **kwargs)
    upstream = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(dtype)
    out.backward(torch.tensor(upstream.astype(np.float64)))
    results = {f"input{i}": a for i, a in enumerate(arrays)}
    results.update(out=out.detach().numpy(), upstream=upstream)
    for i, (t, g) in enumerate(zip(theirs, grad_flags)):
        if g:
            results[f"grad{i}"] = (torch.zeros_like(t) if t.grad is None else t.grad).numpy()
    return results


def assert_matches_reference(case, reference, kwargs):
    """minigrad on the reference's inputs and upstream gradient: values and grads must agree."""
    arrays = [reference[f"input{i}"]
              for i in range(sum(key.startswith("input") for key in reference))]
    ours = [mg.tensor(a, requires_grad=case.requires_grad(i, a)) for i, a in enumerate(arrays)]
    dtype = next(a.dtype for a in arrays if np.issubdtype(a.dtype, np.floating))
    out = case.fn(*ours, **kwargs)
    expected = reference["out"]
    tol = tolerances(dtype)
    assert out.shape == expected.shape, f"{case.name}: {out.shape} vs {expected.shape}"
    assert out.dtype == dtype, f"{case.name}: {dtype} inputs gave a {out.dtype} result"
    np.testing.assert_allclose(out.numpy(), expected, **tol, err_msg=f"{case.name} forward")

    out.backward(mg.tensor(reference["upstream"]))
    for i, mine in enumerate(ours):
        if not mine.requires_grad:
            continue
        assert mine.grad is not None, f"{case.name}: input {i} received no gradient"
        assert mine.grad.dtype == mine.dtype, f"{case.name}: gradient dtype {mine.grad.dtype}"
        np.testing.assert_allclose(mine.grad.numpy(), reference[f"grad{i}"], **tol,
                                   err_msg=f"{case.name} gradient of input {i}")


UNARY_SHAPES = [(), (5,), (2, 3), (2, 1, 3)]
BINARY_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((), (2, 2)),
                 ((2, 1), ())]  # same shape, broadcast rows, both sides, scalars


def unary(name, fn, torch_fn, domain=lambda i, x: x, kwargs=({},)):
    """An OpCase for an op with one tensor input of any shape; ``kwargs`` lists the keyword
    arguments to try (each with every shape of ``UNARY_SHAPES`` in the fixed examples)."""
    return OpCase(name, lambda data: ([data.draw(shapes(), label="shape")],
                                      data.draw(st.sampled_from(kwargs), label="kwargs")),
                  fn, torch_fn, domain=domain,
                  examples=[([shape], options) for options in kwargs for shape in UNARY_SHAPES])


def binary(name, fn, torch_fn, domain=lambda i, x: x):
    """An OpCase for an op with two inputs of mutually broadcastable shapes."""
    return OpCase(name, lambda data: (data.draw(broadcastable(2), label="shapes"), {}),
                  fn, torch_fn, domain=domain,
                  examples=[(list(pair), {}) for pair in BINARY_SHAPES])


def torch_is_installed():
    return importlib.util.find_spec("torch") is not None


REFERENCE_DIR = Path(__file__).parent / "reference"
REFERENCE_SOURCES = ["stored"] + ([pytest.param("live", marks=pytest.mark.torch)]
                                  if torch_is_installed() else [])
# make_reference.py sets this to a dict; while it is one, the "stored" source computes with
# PyTorch and records every result here ({test module: {"<name>/<key>": array}}).
RECORDING = None


@dataclass
class TorchReference:
    module: str  # the test module, which names the file: tests/reference/<module>.npz.gz
    source: str  # "stored" or "live"

    def __call__(self, name, compute):
        if RECORDING is not None:
            return record_reference(self.module, name, as_arrays(compute(import_torch())))
        stored = stored_references(self.module).get(name)
        if stored is None:
            raise LookupError(f"{reference_path(self.module)} holds no reference {name!r}: "
                              f"regenerate it with .venv/bin/python "
                              f"tests/reference/make_reference.py (needs PyTorch)")
        if self.source == "stored":
            return stored
        live = as_arrays(compute(import_torch()))
        assert_same_arrays(live, stored, f"{self.module}: stored reference {name!r} is stale")
        return live


def reference_path(module):
    return REFERENCE_DIR / f"{module}.npz.gz"


def as_arrays(results):
    """A dict of tensors, arrays and numbers (PyTorch's or NumPy's) as NumPy arrays."""
    return {key: value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)
            for key, value in results.items()}


@functools.cache
def stored_references(module):
    """{name: {key: array}} from the module's reference file ({} if it has none)."""
    path = reference_path(module)
    if not path.exists():
        return {}
    references = {}
    # gzip around the whole archive: its many small members then cost a few bytes each.
    with np.load(io.BytesIO(gzip.decompress(path.read_bytes())), allow_pickle=False) as archive:
        for full_key in archive.files:
            name, _, key = full_key.rpartition("/")
            references.setdefault(name, {})[key] = archive[full_key]
    return references


def record_reference(module, name, results):
    arrays = RECORDING.setdefault(module, {})
    for key, value in results.items():
        full_key = f"{name}/{key}"
        if full_key in arrays:  # another test asked for the same name: it must agree
            np.testing.assert_array_equal(value, arrays[full_key], err_msg=full_key)
        arrays[full_key] = value
    return results


def assert_same_arrays(actual, expected, message):
    """Same keys, shapes and dtypes; floats within ``tolerances`` of their dtype, the rest
    equal."""
    assert actual.keys() == expected.keys(), f"{message}: keys {sorted(actual)}"
    for key, value in actual.items():
        assert value.shape == expected[key].shape, f"{message}: shape of {key}"
        assert value.dtype == expected[key].dtype, f"{message}: dtype of {key}"
        if np.issubdtype(value.dtype, np.floating):
            np.testing.assert_allclose(value, expected[key], **tolerances(value.dtype),
                                       err_msg=f"{message}: {key}")
        else:
            np.testing.assert_array_equal(value, expected[key], err_msg=f"{message}: {key}")


def gradients_of_sum(lib, op, *arrays):
    """The gradients of ``op(*inputs).sum()`` for inputs made from ``arrays`` by ``lib``
    (``minigrad`` or ``torch``: both have ``tensor(..., requires_grad=True)``)."""
    tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
    op(*tensors).sum().backward()
    return [t.grad.numpy() for t in tensors]
