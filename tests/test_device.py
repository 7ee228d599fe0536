"""The device seam on a GPU: every op case of the op tests runs on CuPy arrays and must give the
CPU's values and gradients; moving tensors and mixing devices behave. Skipped (with the reason)
without CuPy or a CUDA GPU."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend

try:
    backend.cupy_module()
except RuntimeError as error:
    pytest.skip(f"GPU tests need a CUDA GPU and CuPy: {error}", allow_module_level=True)

import test_ops_activation  # noqa: E402 (after the skip: the op cases, reused)
import test_ops_elementwise  # noqa: E402
import test_ops_linalg  # noqa: E402
import test_ops_reduce  # noqa: E402
import test_ops_shape  # noqa: E402
from helpers import EXAMPLES  # noqa: E402

CASES = (test_ops_elementwise.CASES + test_ops_reduce.CASES + test_ops_shape.CASES
         + test_ops_linalg.CASES + test_ops_activation.CASES)

pytestmark = pytest.mark.gpu


def run_case(case, arrays, kwargs, device):
    inputs = [mg.tensor(a, requires_grad=case.requires_grad(i, a), device=device)
              for i, a in enumerate(arrays)]
    out = case.fn(*inputs, **kwargs)
    assert out.device == device
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    out.backward(mg.tensor(upstream, device=device))
    grads = [x.grad.numpy() for x in inputs if x.requires_grad]
    assert all(x.grad.device == device for x in inputs if x.requires_grad)
    return out.numpy(), grads


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@EXAMPLES
@given(data=st.data())
def test_every_op_gives_the_same_values_and_gradients_on_the_gpu(case, data):
    arrays, kwargs = case.arrays(data, np.float64)
    cpu_out, cpu_grads = run_case(case, arrays, kwargs, "cpu")
    gpu_out, gpu_grads = run_case(case, arrays, kwargs, "cuda")
    np.testing.assert_allclose(gpu_out, cpu_out, rtol=1e-10, atol=1e-12)
    for gpu_grad, cpu_grad in zip(gpu_grads, cpu_grads):
        np.testing.assert_allclose(gpu_grad, cpu_grad, rtol=1e-10, atol=1e-12)


def test_to_moves_data_and_gradients_between_devices():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and "device='cuda'" in repr(y)
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_mixing_devices_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Add: inputs are on different devices \['cpu', 'cuda'\]"):
        mg.ones(2).to("cuda") + mg.ones(2)
