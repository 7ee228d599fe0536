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
    pytest.skip(f"GPU tests need a CUDA GPU and CuPy (.venv/bin/pip install -e \".[cuda]\"): "
                f"{error}", allow_module_level=True)

import test_nn_loss  # noqa: E402
import test_ops_activation  # noqa: E402 (after the skip: the op cases, reused)
import test_ops_binary  # noqa: E402
import test_ops_elementwise  # noqa: E402
import test_ops_indexing  # noqa: E402
import test_ops_linalg  # noqa: E402
import test_ops_reduce  # noqa: E402
import test_ops_rounding  # noqa: E402
import test_ops_shape  # noqa: E402
import test_ops_unary  # noqa: E402
from helpers import EXAMPLES  # noqa: E402

OP_TEST_MODULES = [test_ops_elementwise, test_ops_unary, test_ops_rounding, test_ops_binary,
                   test_ops_reduce, test_ops_shape, test_ops_indexing, test_ops_linalg,
                   test_ops_activation, test_nn_loss]
CASES = [case for module in OP_TEST_MODULES for case in module.CASES]

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


def test_a_lenet5_training_step_on_the_gpu_equals_the_cpu_step():
    from minigrad.models import LeNet5
    from minigrad.nn import functional as F
    from minigrad.optim import SGD

    mg.manual_seed(0)
    cpu_model = LeNet5()
    gpu_model = LeNet5().to("cuda")
    gpu_model.load_state_dict(cpu_model.state_dict())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=8)
    losses = []
    for model, device in [(cpu_model, "cpu"), (gpu_model, "cuda")]:
        optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss = F.cross_entropy(model(mg.tensor(x, device=device)), mg.tensor(y, device=device))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    for (name, p_cpu), p_gpu in zip(cpu_model.named_parameters(), gpu_model.parameters()):
        assert p_gpu.device == "cuda"
        np.testing.assert_allclose(p_gpu.numpy(), p_cpu.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=name)


def test_fit_moves_batches_to_the_models_device():
    from minigrad import nn
    from minigrad.data import DataLoader, TensorDataset
    from minigrad.nn import functional as F
    from minigrad.optim import SGD
    from minigrad.train import fit

    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to("cuda")
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    history = fit(model, loader, SGD(model.parameters(), lr=0.1, momentum=0.9),
                  F.cross_entropy, 10, val_loader=loader, progress=False)
    assert history.epochs[-1]["val_accuracy"] >= 0.95
