"""Every kernel set implements the contract of ``backend/contract.py``: each kernel it lists,
with the same parameters (names, order, defaults). The GPU set is read from its source when
CuPy cannot be imported, so the check runs on every machine."""

import ast
import inspect
import pathlib

import pytest

from minigrad import backend
from minigrad.backend import numpy_ref
from minigrad.backend.contract import KERNELS, KernelSet


def contract_parameters(name):
    """The parameters of kernel ``name`` as the contract states them (``self`` dropped)."""
    parameters = list(inspect.signature(getattr(KernelSet, name)).parameters.values())[1:]
    return [(p.name, p.default) for p in parameters]


def parameters(function):
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_contract_lists_every_kernel_the_ops_and_layers_call():
    assert KERNELS == ("matmul", "erf", "im2col", "conv2d_forward", "conv2d_backward_input",
                       "conv2d_backward_weight", "max_pool2d_forward", "max_pool2d_backward",
                       "avg_pool2d_forward", "avg_pool2d_backward", "csr_matmul", "int8_gemm",
                       "int8_conv2d", "requantize")
    assert contract_parameters("int8_gemm") == [("a", inspect.Parameter.empty),
                                                ("b", inspect.Parameter.empty),
                                                ("a_zero_point", 0), ("b_zero_point", 0),
                                                ("bias", None)]


@pytest.mark.parametrize("name", sorted(backend.CPU_KERNEL_SETS))
def test_each_cpu_kernel_set_implements_the_contract(name):
    if name == "numba":
        pytest.importorskip("numba")
    kernels = backend.kernel_set(name)
    assert isinstance(kernels, KernelSet)  # runtime_checkable: every name is there
    for kernel in KERNELS:
        assert parameters(getattr(kernels, kernel)) == contract_parameters(kernel), (name, kernel)


def source_definitions(path):
    """Module-level kernels of a source file without importing it: ``def`` parameters, and
    ``name = _on_host(numpy_ref.kernel)`` (a reference kernel run on the host) as the
    reference's parameters."""
    found = {}
    for node in ast.parse(pathlib.Path(path).read_text()).body:
        if isinstance(node, ast.FunctionDef):
            args = node.args
            defaults = [inspect.Parameter.empty] * (len(args.args) - len(args.defaults))
            defaults += [ast.literal_eval(d) for d in args.defaults]
            found[node.name] = [(a.arg, d) for a, d in zip(args.args, defaults)]
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
              and isinstance(node.value.func, ast.Name) and node.value.func.id == "_on_host"):
            reference = getattr(numpy_ref, node.value.args[0].attr)
            found[node.targets[0].id] = parameters(reference)
    return found


def test_the_gpu_kernel_set_implements_the_contract():
    found = source_definitions(pathlib.Path(backend.__file__).with_name("cupy_gpu.py"))
    for kernel in KERNELS:
        assert found.get(kernel) == contract_parameters(kernel), kernel


def test_the_source_reader_sees_what_an_import_sees():
    found = source_definitions(numpy_ref.__file__)
    for kernel in KERNELS:
        assert found[kernel] == parameters(getattr(numpy_ref, kernel))
